package route

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/processors/match"
)

// Class is a data classification. Classes are ordered: a sink that may
// receive a class may receive every lower one.
type Class uint8

// The classes, lowest first. The zero Class is invalid.
const (
	Public Class = iota + 1
	Internal
	Confidential
	Restricted
)

// DefaultClass is the class of a tag no rule classifies and the highest
// class a sink without max_class receives: data stays inside the company
// unless the configuration says otherwise.
const DefaultClass = Internal

var classNames = [...]string{Public: "public", Internal: "internal", Confidential: "confidential", Restricted: "restricted"}

// String is the name as written in a configuration file.
func (c Class) String() string {
	if c >= Public && c <= Restricted {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Valid reports whether c is one of the four classes.
func (c Class) Valid() bool { return c >= Public && c <= Restricted }

// ClassNames lists the classes, lowest first, for messages.
var ClassNames = []string{"public", "internal", "confidential", "restricted"}

// ParseClass accepts a class name as written in a configuration file;
// "" gives def.
func ParseClass(s string, def Class) (Class, error) {
	if s == "" {
		return def, nil
	}
	for c := Public; c <= Restricted; c++ {
		if classNames[c] == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown class %q (want %s)", s, strings.Join(ClassNames, ", "))
}

// ClassificationConfig is the top-level `classification:` block.
type ClassificationConfig struct {
	// Default is the class of tags no rule matches; default internal.
	Default string `yaml:"default"`
	// Rules give classes by tag pattern. A tag that several rules match
	// has the highest of their classes: a tag someone marked confidential
	// stays confidential even if a broader rule calls its area public.
	Rules []ClassRule `yaml:"rules"`
}

// ClassRule classifies the tags its patterns match.
type ClassRule struct {
	Match []string `yaml:"match"`
	Class string   `yaml:"class"`
}

// Validate checks the block without I/O.
func (c *ClassificationConfig) Validate() error {
	var errs conf.Errors
	if _, err := ParseClass(c.Default, DefaultClass); err != nil {
		errs.Addf("default", "%v", err)
	}
	for i, r := range c.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		if len(r.Match) == 0 {
			errs.Addf(at+".match", "is required: the tag patterns this class applies to")
		}
		errs.AddPrefixed(at, match.Validate("match", r.Match))
		if r.Class == "" {
			errs.Addf(at+".class", "is required (one of %s)", strings.Join(ClassNames, ", "))
		} else if _, err := ParseClass(r.Class, 0); err != nil {
			errs.Addf(at+".class", "%v", err)
		}
	}
	return errs.Err()
}

// PathChange is one way the shared processor chain changes tag paths,
// given to NewClassifier in chain order so that classification rules,
// written for the paths sources make, follow the data to the paths it has
// when it leaves the shared chain, where routes classify it. Exactly one
// of the two forms is set:
//
//   - a rename (From non-empty): the leading levels From (literal, no
//     trailing '/') become To ("" strips them);
//   - a sibling (Suffix non-empty): a derived tag at path+Suffix beside
//     its input (rate's output.path_suffix).
//
// Children a processor adds under its input (a window's
// path/mean_1m) need no PathChange: a path inherits its ancestors' class.
type PathChange struct {
	From, To string
	Suffix   string
}

// EffectiveRule is one pattern the classifier applies: a configured
// pattern extended to the paths below it, or the same carried through a
// PathChange of the shared chain.
type EffectiveRule struct {
	Filter string
	Class  Class
	// Rule is the index of the configured rule it comes from
	// (classification.rules[Rule]); Pattern its pattern as written.
	Rule    int
	Pattern string
	// Mapped is true for a pattern carried through a PathChange.
	Mapped bool
}

// Classifier gives each tag path its class. It holds no cache and is
// immutable after NewClassifier, so it is safe for concurrent use; routes
// cache its answers per path.
type Classifier struct {
	def   Class
	rules []classRule // one per class that has patterns, highest first
	eff   []EffectiveRule
}

type classRule struct {
	m     *match.Matcher
	class Class
}

// MaxPatterns bounds the patterns a classifier applies, carried ones
// included: each shared rename can at most double them.
const MaxPatterns = 10_000

// NewClassifier compiles a validated block. chain lists the path changes
// of the shared processor chain in order (see PathChange); none: paths
// leave the chain as sources made them.
//
// Every pattern P is applied as P/# — a path has the highest class of
// any rule matching it or one of its ancestors, so whatever a processor
// derives below a tag (a window's aggregates) keeps the tag's class —
// and, for each change in chain order, the patterns so far are carried
// through it and added; the configured patterns stay. A carried pattern
// is never narrower than the paths it stands for: where the exact image
// cannot be written as a filter it is widened.
func NewClassifier(c ClassificationConfig, chain ...PathChange) (*Classifier, error) {
	def, err := ParseClass(c.Default, DefaultClass)
	if err != nil {
		return nil, err
	}
	cl := &Classifier{def: def}
	seen := map[string]int{} // filter+class → index in cl.eff
	add := func(e EffectiveRule) bool {
		key := e.Filter + "\x00" + e.Class.String()
		if _, dup := seen[key]; dup {
			return false
		}
		seen[key] = len(cl.eff)
		cl.eff = append(cl.eff, e)
		return true
	}
	for i, r := range c.Rules {
		class, err := ParseClass(r.Class, 0)
		if err != nil {
			return nil, err
		}
		for _, f := range r.Match {
			if err := match.Check(f); err != nil {
				return nil, fmt.Errorf("rules[%d]: %w", i, err)
			}
			add(EffectiveRule{Filter: join(below(split(f))), Class: class, Rule: i, Pattern: f})
		}
	}
	for _, ch := range chain {
		n := len(cl.eff) // carry what is there before this change only once
		if n > MaxPatterns {
			break // reported below
		}
		for k := 0; k < n; k++ {
			e := cl.eff[k]
			for _, img := range ch.image(split(e.Filter)) {
				e2 := e
				e2.Filter, e2.Mapped = join(img), true
				add(e2)
			}
		}
	}
	if len(cl.eff) > MaxPatterns {
		return nil, fmt.Errorf("carrying the rules through the shared chain's %d path changes makes %d patterns, more than %d: write fewer, broader rules or rename less",
			len(chain), len(cl.eff), MaxPatterns)
	}
	for class := Restricted; class >= Public; class-- {
		var fs []string
		for _, e := range cl.eff {
			if e.Class == class {
				fs = append(fs, e.Filter)
			}
		}
		if len(fs) == 0 {
			continue
		}
		m, err := match.Compile(fs)
		if err != nil {
			return nil, err
		}
		cl.rules = append(cl.rules, classRule{m: m, class: class})
	}
	return cl, nil
}

// Class returns the highest class among the rules matching path or one
// of its ancestors, or the default when none does. A nil Classifier gives
// DefaultClass.
func (c *Classifier) Class(path string) Class {
	if c == nil {
		return DefaultClass
	}
	for _, r := range c.rules { // highest class first
		if r.m.MatchConcurrent(path) {
			return r.class
		}
	}
	return c.def
}

// Default is the class of a path no rule matches.
func (c *Classifier) Default() Class {
	if c == nil {
		return DefaultClass
	}
	return c.def
}

// Rules are the patterns the classifier applies, configured ones first
// (each extended to the paths below it), then those carried through the
// shared chain; for reports and warnings.
func (c *Classifier) Rules() []EffectiveRule {
	if c == nil {
		return nil
	}
	return slices.Clone(c.eff)
}

// image is the filter(s) matching every path the change makes from a path
// that f (a filter ending in '#') matches; none when it makes none.
func (ch PathChange) image(f []string) [][]string {
	switch {
	case ch.From != "":
		if img, ok := renamed(f, split(strings.TrimSuffix(ch.From, "/")), splitOrNone(strings.TrimSuffix(ch.To, "/"))); ok {
			return [][]string{widen(img)}
		}
	case ch.Suffix != "":
		if img, ok := suffixed(f, ch.Suffix); ok {
			return [][]string{widen(img)}
		}
	}
	return nil
}

// renamed carries f (ending in '#') through a rename of the literal
// leading levels from to to: the paths under from that f matches, with
// from replaced. It is exact: from has no wildcards, so f's levels are
// consumed against it ('+' takes one level, '#' all the rest) and what
// is left of f follows to.
func renamed(f, from, to []string) ([]string, bool) {
	for i, l := range from {
		switch {
		case i >= len(f):
			return nil, false
		case f[i] == "#":
			return append(slices.Clone(to), "#"), true
		case f[i] != "+" && f[i] != l:
			return nil, false
		}
	}
	if len(f) <= len(from) {
		return nil, false
	}
	return append(slices.Clone(to), f[len(from):]...), true
}

// suffixed carries f (ending in '#') through a sibling tag at
// path+suffix. A path below an instance of f's fixed part stays below it
// (f matches it already); an instance itself becomes one whose last
// level has the suffix. Nothing new when the last level is '+' and the
// suffix adds no level, or f is "#".
func suffixed(f []string, suffix string) ([]string, bool) {
	core := f[:len(f)-1]
	if len(core) == 0 {
		return nil, false
	}
	last := core[len(core)-1]
	var img []string
	if last == "+" {
		sl := strings.Split(suffix, "/")
		if len(sl) == 1 {
			return nil, false
		}
		img = append(slices.Clone(core), sl[1:]...)
	} else {
		img = append(slices.Clone(core[:len(core)-1]), strings.Split(last+suffix, "/")...)
	}
	img = append(img, "#")
	if match.Check(join(img)) != nil {
		// A suffix that makes no valid filter: the parent's whole area.
		img = append(slices.Clone(core[:len(core)-1]), "#")
	}
	return img, true
}

// widen makes f a valid filter that matches at least every path f
// matches: a filter longer than a path may be keeps its leading levels
// and ends in '#'.
func widen(f []string) []string {
	for len(f) > 1 && match.Check(join(f)) != nil {
		f = append(slices.Clone(f[:len(f)-2]), "#")
	}
	if match.Check(join(f)) != nil {
		return []string{"#"}
	}
	return f
}

// below is f extended to the paths below the ones it matches: f/#.
func below(f []string) []string {
	if f[len(f)-1] == "#" {
		return f
	}
	return append(slices.Clone(f), "#")
}

func split(f string) []string { return strings.Split(f, "/") }

func splitOrNone(p string) []string {
	if p == "" {
		return nil
	}
	return split(p)
}

func join(f []string) string { return strings.Join(f, "/") }
