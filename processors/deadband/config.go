package deadband

import (
	"math"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/processors/match"
)

// DefaultMaxTags bounds the per-tag state when max_tags is not set.
const DefaultMaxTags = 100_000

// Config is the `deadband:` block of a processor: rules tried in order, the
// first whose match list fits a sample's path applies.
type Config struct {
	// MaxTags bounds how many tags the processor remembers. Tags beyond it
	// pass unfiltered and are counted as "untracked": failing open keeps
	// data flowing when the namespace is larger than planned.
	MaxTags int    `yaml:"max_tags"`
	Rules   []Rule `yaml:"rules"`
}

// Rule is one deadband setting. With neither Absolute nor Percent set it is
// plain report-by-exception: any change passes.
type Rule struct {
	Match []string `yaml:"match"`
	// Absolute passes a numeric value when it differs from the last value
	// passed by more than this, in engineering units.
	Absolute float64 `yaml:"absolute"`
	// Percent is the deadband as a percentage of Range (max - min); the
	// range is configured here because samples carry no tag metadata.
	Percent float64 `yaml:"percent"`
	Range   *Range  `yaml:"range"`
	// MaxSilence is the heartbeat: a tag not passed for this long is
	// re-emitted on the engine's clock. Zero disables it.
	MaxSilence time.Duration `yaml:"max_silence"`
}

// Range is a tag's engineering range.
type Range struct {
	Min float64 `yaml:"min"`
	Max float64 `yaml:"max"`
}

func (c *Config) setDefaults() {
	if c.MaxTags == 0 {
		c.MaxTags = DefaultMaxTags
	}
}

// Validate checks the configuration as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	if c.MaxTags < 0 {
		errs.Addf("max_tags", "must not be negative")
	}
	if len(c.Rules) == 0 {
		errs.Addf("rules", "at least one rule is required")
	}
	for i, r := range c.Rules {
		p := conf.Index("rules", i)
		errs.AddPrefixed(p, match.Validate("match", r.Match))
		if r.Absolute < 0 || math.IsNaN(r.Absolute) || math.IsInf(r.Absolute, 0) {
			errs.Addf(conf.JoinPath(p, "absolute"), "must be a finite number ≥ 0")
		}
		if r.Percent < 0 || r.Percent > 100 || math.IsNaN(r.Percent) {
			errs.Addf(conf.JoinPath(p, "percent"), "must be between 0 and 100")
		}
		if r.Absolute > 0 && r.Percent > 0 {
			errs.Addf(p, "set absolute or percent, not both")
		}
		switch {
		case r.Percent > 0 && r.Range == nil:
			errs.Addf(conf.JoinPath(p, "range"), "percent needs the tag's range (min and max): samples carry no range")
		case r.Range != nil && r.Percent == 0:
			errs.Addf(conf.JoinPath(p, "range"), "range is only used with percent")
		case r.Range != nil && !(r.Range.Max > r.Range.Min):
			errs.Addf(conf.JoinPath(p, "range"), "max (%g) must be greater than min (%g)", r.Range.Max, r.Range.Min)
		case r.Range != nil && math.IsInf(r.Range.Max-r.Range.Min, 0):
			errs.Addf(conf.JoinPath(p, "range"), "must be finite")
		}
		if r.MaxSilence < 0 {
			errs.Addf(conf.JoinPath(p, "max_silence"), "must not be negative")
		}
	}
	return errs.Err()
}
