package rename

import (
	"strings"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/match"
)

// DefaultMaxTags bounds the rewrite cache when max_tags is not set.
const DefaultMaxTags = 100_000

// Config is the `rename:` block of a processor.
type Config struct {
	// Match selects the samples to rename; empty: every sample whose path
	// starts with From.
	Match []string `yaml:"match"`
	// From is the leading part of the path to replace, in whole levels:
	// "plant" and "plant/" both mean the first level "plant", so
	// "plantX/a" is left alone.
	From string `yaml:"from"`
	// To replaces From; empty strips it ("plant/a/b" becomes "a/b").
	To string `yaml:"to"`
	// MaxTags bounds the paths whose rewrite is remembered; further paths
	// are still renamed, at the cost of building the string each time
	// (counted as rename_uncached).
	MaxTags int `yaml:"max_tags"`
}

func (c *Config) setDefaults() {
	if c.MaxTags == 0 {
		c.MaxTags = DefaultMaxTags
	}
}

// Validate checks the configuration as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	errs.Add(match.Validate("match", c.Match))
	from := trimLevels(c.From)
	switch {
	case c.From == "":
		errs.Addf("from", "is required: the path prefix to replace, e.g. \"plant/\"")
	case strings.HasPrefix(c.From, "/"):
		errs.Addf("from", "%q starts with '/': tag paths never do, so it could not match", c.From)
	default:
		if err := model.ValidatePath(from); err != nil {
			errs.Addf("from", "%q is not a path prefix: %v", c.From, err)
		}
	}
	if to := trimLevels(c.To); c.To != "" {
		switch {
		case strings.HasPrefix(c.To, "/"):
			errs.Addf("to", "%q starts with '/': tag paths never do", c.To)
		case to == "":
			errs.Addf("to", "%q has no level; leave it empty to strip the prefix", c.To)
		default:
			if err := model.ValidatePath(to); err != nil {
				errs.Addf("to", "%q is not a path prefix: %v", c.To, err)
			}
		}
	}
	if c.From != "" && c.To != "" && from == trimLevels(c.To) {
		errs.Addf("to", "is the same as from (%q): the rename would change nothing", c.From)
	}
	if c.MaxTags < 0 {
		errs.Addf("max_tags", "must not be negative")
	}
	return errs.Err()
}

// trimLevels drops the one trailing '/' a prefix may be written with.
func trimLevels(p string) string {
	return strings.TrimSuffix(p, "/")
}
