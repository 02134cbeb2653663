package historian

import (
	"math"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/processors/match"
)

// Compression methods of the `compression:` block.
const (
	MethodNone         = "none"
	MethodDeadband     = "deadband"
	MethodSwingingDoor = "swinging_door"
)

// DefaultMaxInterval is the heartbeat when max_interval is unset: a flat
// line still gets a stored point this often, so a trend shows the tag is
// alive and a query for the last hour finds a value.
const DefaultMaxInterval = 10 * time.Minute

// Compression is the `compression:` block of the historian: how many of a
// tag's samples are stored. Off (method none) by default: every sample is
// kept.
type Compression struct {
	CompressionSettings `yaml:",inline"`
	// Tags override the settings by tag pattern (processors/match filters,
	// "plant/+/temp", "plant/line1/#"); the first rule that matches a path
	// wins, and its settings replace the block's whole.
	Tags []CompressionRule `yaml:"tags"`
}

// CompressionSettings are the settings of one tag.
type CompressionSettings struct {
	// Method is none (default), deadband or swinging_door.
	Method string `yaml:"method"`
	// Deviation is the band in the tag's unit: deadband stores a value
	// that moved more than it from the last stored value; swinging_door
	// stores points so that the straight line between stored points is
	// within it of every sample.
	Deviation float64 `yaml:"deviation"`
	// Percent is the band as a percent of Span; with both set, the
	// narrower band applies (a value is stored when it moves more than
	// either).
	Percent float64 `yaml:"percent"`
	// Span is the tag's range (max − min) in its unit, for Percent.
	Span float64 `yaml:"span"`
	// MaxInterval is the heartbeat: a point is stored at least this often
	// even when the value does not move (default 10m).
	MaxInterval string `yaml:"max_interval"`
}

// CompressionRule is one `tags:` entry.
type CompressionRule struct {
	Match               []string `yaml:"match"`
	CompressionSettings `yaml:",inline"`
}

func (c Compression) validate(errs *conf.Errors) {
	c.CompressionSettings.validate("compression", errs)
	for i, r := range c.Tags {
		key := conf.Index("compression.tags", i)
		if len(r.Match) == 0 {
			errs.Addf(key+".match", "is required: a list of tag patterns such as plant/+/temp")
		} else if err := match.Validate(key+".match", r.Match); err != nil {
			errs.Add(err)
		}
		r.CompressionSettings.validate(key, errs)
	}
}

func (s CompressionSettings) validate(key string, errs *conf.Errors) {
	switch s.Method {
	case "", MethodNone, MethodDeadband, MethodSwingingDoor:
	default:
		errs.Addf(key+".method", "must be none, deadband or swinging_door, got %q", s.Method)
	}
	bad := func(f float64) bool { return f < 0 || math.IsNaN(f) || math.IsInf(f, 0) }
	if bad(s.Deviation) {
		errs.Addf(key+".deviation", "must be a finite number ≥ 0, got %v", s.Deviation)
	}
	if bad(s.Percent) || s.Percent > 100 {
		errs.Addf(key+".percent", "must be from 0 to 100, got %v", s.Percent)
	}
	if bad(s.Span) {
		errs.Addf(key+".span", "must be a finite number ≥ 0, got %v", s.Span)
	}
	if s.Percent > 0 && s.Span == 0 {
		errs.Addf(key+".span", "is required with percent: the band is percent of the span (max − min) of the tag")
	}
	if s.Method == MethodSwingingDoor && s.band() <= 0 {
		errs.Addf(key+".deviation", "swinging_door needs a deviation > 0 (or percent and span)")
	}
	if s.MaxInterval != "" {
		if d, err := time.ParseDuration(s.MaxInterval); err != nil || d <= 0 {
			errs.Addf(key+".max_interval", "must be a duration such as 10m, got %q", s.MaxInterval)
		}
	}
}

// band is the narrower of the absolute and the percent band; 0 for a
// deadband means "store every change".
func (s CompressionSettings) band() float64 {
	b := s.Deviation
	if s.Percent > 0 && s.Span > 0 {
		p := s.Percent / 100 * s.Span
		if b == 0 || p < b {
			b = p
		}
	}
	return b
}

// compiled is the settings in the form the compressor uses (validated).
func (s CompressionSettings) compiled() compSettings {
	m := methodNone
	switch s.Method {
	case MethodDeadband:
		m = methodDeadband
	case MethodSwingingDoor:
		m = methodSDT
	}
	iv := DefaultMaxInterval
	if s.MaxInterval != "" {
		iv, _ = time.ParseDuration(s.MaxInterval)
	}
	return compSettings{method: m, band: s.band(), maxInterval: int64(iv)}
}

// on reports whether any tag is compressed.
func (c Compression) on() bool {
	if c.compiled().method != methodNone {
		return true
	}
	for _, r := range c.Tags {
		if r.compiled().method != methodNone {
			return true
		}
	}
	return false
}
