package downsample

import (
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/processors/match"
)

// DefaultMaxTags bounds the per-tag state when max_tags is not set.
const DefaultMaxTags = 100_000

// Modes: which sample of an interval is passed on.
const (
	ModeFirst = "first" // the first sample of each interval, at once
	ModeLast  = "last"  // the newest sample of each interval, when it ends
)

// Config is the `downsample:` block of a processor.
type Config struct {
	// Match selects the tags to downsample; others pass untouched.
	Match []string `yaml:"match"`
	// Interval is the period of at most one sample per tag. Intervals are
	// aligned to the Unix epoch by SourceTime, so every tag and every
	// gateway cuts at the same instants.
	Interval time.Duration `yaml:"interval"`
	// Mode is first (default: no delay, nothing held) or last (the newest
	// value of the interval, emitted when it ends).
	Mode string `yaml:"mode"`
	// DropBad drops bad-quality samples. By default they always pass,
	// whatever the interval: a device outage is news.
	DropBad bool `yaml:"drop_bad"`
	// MaxTags bounds the tags downsampled; samples of further tags pass
	// through and are counted as untracked (failing open keeps data
	// flowing when the namespace is larger than planned).
	MaxTags int `yaml:"max_tags"`
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeFirst
	}
	if c.MaxTags == 0 {
		c.MaxTags = DefaultMaxTags
	}
}

// Validate checks the configuration as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	errs.Add(match.Validate("match", c.Match))
	switch {
	case c.Interval == 0:
		errs.Addf("interval", "is required: the period of at most one sample per tag, e.g. 10s")
	case c.Interval < 0:
		errs.Addf("interval", "must be positive, got %s", c.Interval)
	case c.Interval < time.Millisecond:
		errs.Addf("interval", "%s is shorter than 1ms: downsampling would keep every sample", c.Interval)
	}
	switch c.Mode {
	case "", ModeFirst, ModeLast:
	default:
		errs.Addf("mode", "%q is not one of first, last", c.Mode)
	}
	if c.MaxTags < 0 {
		errs.Addf("max_tags", "must not be negative")
	}
	return errs.Err()
}
