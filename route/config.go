package route

import (
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/processors/match"
)

// Qualities a route may ask for.
const (
	QualityAny    = "any"     // default: every sample
	QualityNotBad = "not_bad" // good and uncertain
	QualityGood   = "good"    // good only
)

// Selection is what a sink's `route:` block selects; the block's
// `processors:` list (the sink's own chain) is config.Route's, since
// processor kinds are built by package config.
type Selection struct {
	// Include are tag patterns the sink receives; empty: every tag.
	Include []string `yaml:"include"`
	// Exclude are tag patterns it never receives; exclude beats include.
	Exclude []string `yaml:"exclude"`
	// Quality is any (default), not_bad or good.
	Quality string `yaml:"quality"`
}

// Validate checks the block without I/O.
func (s *Selection) Validate() error {
	var errs conf.Errors
	errs.Add(match.Validate("include", s.Include))
	errs.Add(match.Validate("exclude", s.Exclude))
	switch s.Quality {
	case "", QualityAny, QualityNotBad, QualityGood:
	default:
		errs.Addf("quality", "unknown quality %q (want any, not_bad or good)", s.Quality)
	}
	return errs.Err()
}
