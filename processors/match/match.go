package match

import (
	"errors"
	"fmt"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
)

// DefaultCacheSize bounds the per-path answer cache of a Matcher.
const DefaultCacheSize = 8192

// Matcher matches tag paths against a list of compiled filters.
type Matcher struct {
	filters  [][]string // levels of each filter
	all      bool       // empty list or a bare "#": every path matches
	cache    map[string]bool
	maxCache int
}

// Check validates one filter: levels separated by '/', none empty, '+' and
// '#' only as whole levels, '#' only last, at most model.MaxPathLevels
// levels, no control characters.
func Check(filter string) error {
	if filter == "" {
		return errors.New("filter is empty")
	}
	if len(filter) > model.MaxPathLen {
		return fmt.Errorf("filter is %d bytes long, the limit is %d", len(filter), model.MaxPathLen)
	}
	levels := strings.Split(filter, "/")
	if len(levels) > model.MaxPathLevels {
		return fmt.Errorf("filter %q has %d levels, the limit is %d", filter, len(levels), model.MaxPathLevels)
	}
	for i, l := range levels {
		switch {
		case l == "":
			return fmt.Errorf("filter %q has an empty level (tag paths never do, so it could not match)", filter)
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("filter %q: '#' must be the last level", filter)
		case l != "+" && l != "#" && strings.ContainsAny(l, "+#"):
			return fmt.Errorf("filter %q: '+' and '#' must fill a whole level", filter)
		}
		for j := 0; j < len(l); j++ {
			if c := l[j]; c < 0x20 || c == 0x7f {
				return fmt.Errorf("filter %q contains a control character", filter)
			}
		}
	}
	return nil
}

// Validate checks a `match:` list and returns conf.FieldErrors with paths
// key[i], so a processor's Validate can add them as they are.
func Validate(key string, filters []string) error {
	var errs conf.Errors
	for i, f := range filters {
		if err := Check(f); err != nil {
			errs.Add(conf.Errorf(conf.Index(key, i), "%w", err))
		}
	}
	return errs.Err()
}

// Compile builds a Matcher; an empty list matches everything.
func Compile(filters []string) (*Matcher, error) {
	if err := Validate("match", filters); err != nil {
		return nil, err
	}
	m := &Matcher{maxCache: DefaultCacheSize, all: len(filters) == 0}
	for _, f := range filters {
		if f == "#" {
			m.all = true
		}
		m.filters = append(m.filters, strings.Split(f, "/"))
	}
	if !m.all {
		m.cache = make(map[string]bool)
	}
	return m, nil
}

// MustCompile is Compile for filters known to be valid (tests, constants).
func MustCompile(filters ...string) *Matcher {
	m, err := Compile(filters)
	if err != nil {
		panic(err)
	}
	return m
}

// All reports whether m matches every path.
func (m *Matcher) All() bool { return m.all }

// Match reports whether path matches any of the filters.
func (m *Matcher) Match(path string) bool {
	if m.all {
		return true
	}
	if v, ok := m.cache[path]; ok {
		return v
	}
	v := m.walk(path)
	if len(m.cache) >= m.maxCache {
		clear(m.cache)
	}
	m.cache[path] = v
	return v
}

// MatchConcurrent is Match without the cache: safe for concurrent use on
// a Matcher nobody else calls Match on, for immutable tables (the route
// classifier) whose users keep caches of their own.
func (m *Matcher) MatchConcurrent(path string) bool { return m.all || m.walk(path) }

func (m *Matcher) walk(path string) bool {
	for _, f := range m.filters {
		if matchLevels(f, path) {
			return true
		}
	}
	return false
}

// matchLevels matches path against one filter's levels without allocating.
func matchLevels(filter []string, path string) bool {
	rest := path
	done := false // no levels of path left
	for _, fl := range filter {
		if fl == "#" {
			return true // the rest, including nothing: "a/#" matches "a"
		}
		if done {
			return false
		}
		var level string
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			level, rest = rest[:j], rest[j+1:]
		} else {
			level, done = rest, true
		}
		if level == "" || (fl != "+" && fl != level) {
			return false
		}
	}
	return done
}
