package route

import (
	"fmt"
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

// Classifier gives each tag path its class. It holds no cache and is
// immutable after NewClassifier, so it is safe for concurrent use; routes
// cache its answers per path.
type Classifier struct {
	def   Class
	rules []classRule
}

type classRule struct {
	m     *match.Matcher
	class Class
}

// NewClassifier compiles a validated block.
func NewClassifier(c ClassificationConfig) (*Classifier, error) {
	def, err := ParseClass(c.Default, DefaultClass)
	if err != nil {
		return nil, err
	}
	cl := &Classifier{def: def}
	for _, r := range c.Rules {
		class, err := ParseClass(r.Class, 0)
		if err != nil {
			return nil, err
		}
		m, err := match.Compile(r.Match)
		if err != nil {
			return nil, err
		}
		cl.rules = append(cl.rules, classRule{m: m, class: class})
	}
	return cl, nil
}

// Class returns the highest class among the rules matching path, or the
// default when none does. A nil Classifier gives DefaultClass.
func (c *Classifier) Class(path string) Class {
	if c == nil {
		return DefaultClass
	}
	best := Class(0)
	for _, r := range c.rules {
		if r.class > best && r.m.MatchConcurrent(path) {
			best = r.class
		}
	}
	if best == 0 {
		return c.def
	}
	return best
}
