package window

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/processors/match"
)

// Defaults applied by setDefaults.
const (
	DefaultMaxSamples = 10_000
	DefaultMaxTags    = 10_000
	// maxPanesPerWindow bounds size/slide: a sliding window is kept as
	// size/slide panes per tag.
	maxPanesPerWindow = 1000
)

// Config is the `window:` block of a processor.
type Config struct {
	Match []string `yaml:"match"`
	// Size is the window length; Slide how far consecutive windows are
	// apart (0 or Size: tumbling; smaller: sliding, Size a multiple of it).
	// Windows are aligned to the Unix epoch, so every tag and every gateway
	// cuts at the same instants.
	Size  time.Duration `yaml:"size"`
	Slide time.Duration `yaml:"slide"`
	// Aggregates: min, max, mean, sum, count, stddev, first, last, pNN.
	Aggregates []string `yaml:"aggregates"`
	// AllowedLateness is how long after a window's end it stays open for
	// samples that arrive late, on the engine's clock.
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// Late is what happens to a sample for a window already emitted: drop
	// (default, counted) or update (emit a corrected aggregate, marked
	// Historical, for up to UpdateHorizon after the window closed).
	Late          string        `yaml:"late"`
	UpdateHorizon time.Duration `yaml:"update_horizon"`
	// EmitEmpty emits windows without samples for tags seen before (count
	// 0, sum 0, the rest bad with reason "empty window").
	EmitEmpty bool `yaml:"emit_empty"`
	// PassThrough passes the raw matching samples on as well; by default
	// they are swallowed and only aggregates leave the processor.
	PassThrough bool `yaml:"pass_through"`
	// MaxSamples bounds the values kept per tag and window for
	// percentiles; beyond it a uniform reservoir sample is kept.
	MaxSamples int `yaml:"max_samples"`
	// MaxTags bounds the tags aggregated; samples of further tags pass
	// through raw and are counted.
	MaxTags int `yaml:"max_tags"`
	// Label is appended to the aggregate's name in output paths:
	// path/mean_<label>; default the size, e.g. "1m".
	Label string `yaml:"label"`
}

func (c *Config) setDefaults() {
	if c.Slide == 0 {
		c.Slide = c.Size
	}
	if c.Late == "" {
		c.Late = "drop"
	}
	if c.Late == "update" && c.UpdateHorizon == 0 {
		c.UpdateHorizon = c.Size
	}
	if c.MaxSamples == 0 {
		c.MaxSamples = DefaultMaxSamples
	}
	if c.MaxTags == 0 {
		c.MaxTags = DefaultMaxTags
	}
	if c.Label == "" {
		c.Label = durationLabel(c.Size)
	}
}

// Validate checks the configuration as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	errs.Add(match.Validate("match", c.Match))
	if c.Size <= 0 {
		errs.Addf("size", "must be positive")
	}
	switch {
	case c.Slide < 0:
		errs.Addf("slide", "must not be negative")
	case c.Slide > 0 && c.Size > 0 && c.Slide > c.Size:
		errs.Addf("slide", "must not exceed size (%s): gaps between windows would lose samples", c.Size)
	case c.Slide > 0 && c.Size > 0 && c.Size%c.Slide != 0:
		errs.Addf("slide", "size (%s) must be a multiple of slide (%s)", c.Size, c.Slide)
	case c.Slide > 0 && c.Size/c.Slide > maxPanesPerWindow:
		errs.Addf("slide", "size/slide is %d, the limit is %d", c.Size/c.Slide, maxPanesPerWindow)
	}
	if len(c.Aggregates) == 0 {
		errs.Addf("aggregates", "at least one aggregate is required")
	}
	seen := map[string]bool{}
	for i, a := range c.Aggregates {
		if _, err := parseAggregate(a); err != nil {
			errs.Add(conf.Errorf(conf.Index("aggregates", i), "%w", err))
		}
		if seen[a] {
			errs.Addf(conf.Index("aggregates", i), "%q is listed twice", a)
		}
		seen[a] = true
	}
	if c.AllowedLateness < 0 {
		errs.Addf("allowed_lateness", "must not be negative")
	}
	switch c.Late {
	case "", "drop", "update":
	default:
		errs.Addf("late", "%q is not one of drop, update", c.Late)
	}
	if c.UpdateHorizon < 0 {
		errs.Addf("update_horizon", "must not be negative")
	} else if c.UpdateHorizon > 0 && c.Late != "update" {
		errs.Addf("update_horizon", "only used with late: update")
	}
	if c.MaxSamples < 0 {
		errs.Addf("max_samples", "must not be negative")
	}
	if c.MaxTags < 0 {
		errs.Addf("max_tags", "must not be negative")
	}
	if c.Label != "" && (strings.ContainsAny(c.Label, "/+#") || strings.TrimSpace(c.Label) != c.Label) {
		errs.Addf("label", "%q must be one path level without '/', '+', '#' or surrounding spaces", c.Label)
	}
	return errs.Err()
}

// aggKind identifies an aggregate; percentiles carry their quantile.
type aggKind uint8

const (
	aggMin aggKind = iota
	aggMax
	aggMean
	aggSum
	aggCount
	aggStddev
	aggFirst
	aggLast
	aggPercentile
)

type aggregate struct {
	name string
	kind aggKind
	q    float64 // percentile, 0..100
}

var aggNames = map[string]aggKind{
	"min": aggMin, "max": aggMax, "mean": aggMean, "sum": aggSum, "count": aggCount,
	"stddev": aggStddev, "first": aggFirst, "last": aggLast,
}

func parseAggregate(s string) (aggregate, error) {
	if k, ok := aggNames[s]; ok {
		return aggregate{name: s, kind: k}, nil
	}
	if rest, ok := strings.CutPrefix(s, "p"); ok {
		q, err := strconv.ParseFloat(rest, 64)
		if err == nil && q > 0 && q <= 100 {
			return aggregate{name: s, kind: aggPercentile, q: q}, nil
		}
	}
	return aggregate{}, fmt.Errorf("unknown aggregate %q: want min, max, mean, sum, count, stddev, first, last or a percentile p1..p100 (p99.9)", s)
}

// durationLabel writes d compactly for output paths: 1m, 15s, 2h, 500ms.
func durationLabel(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}

// OutputNames are the levels the window adds below every tag it
// aggregates, exactly as it names its output paths (path/<name>): one per
// aggregate, "<aggregate>_<label>". For reports that list the tags a
// configuration makes (weir validate's data flows) without running it.
func (c Config) OutputNames() []string {
	c.setDefaults()
	out := make([]string, 0, len(c.Aggregates))
	for _, a := range c.Aggregates {
		out = append(out, a+"_"+c.Label)
	}
	return out
}
