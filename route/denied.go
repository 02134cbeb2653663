package route

import "sync"

// DeniedSet is the set of tags already reported as denied to one sink,
// so that "once per sink and tag" holds across reloads: the gateway keeps
// one per sink name and hands it to every route built for that name (a
// reload that replaces the sink builds a new Route, which would otherwise
// start empty and report every denied tag again). It is bounded by
// MaxDeniedTags; past it, one more event says so and the rest are counted
// only. Safe for concurrent use (an old and a new route of a sink may
// overlap while the engine swaps them); a route consults it only on the
// first denied sample of a path, so the lock is off the hot path.
type DeniedSet struct {
	mu   sync.Mutex
	max  Class // the sink's max_class the set was made for
	tags map[string]struct{}
	full bool // the "set is full" event was sent
}

// NewDeniedSet makes an empty set for a sink whose max_class is max.
func NewDeniedSet(max Class) *DeniedSet {
	return &DeniedSet{max: max, tags: map[string]struct{}{}}
}

// MaxClass is the max_class the set was made for: a sink whose class
// changed denies under another policy, and its denials are new facts.
func (s *DeniedSet) MaxClass() Class { return s.max }

// Len is how many tags the set holds.
func (s *DeniedSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tags)
}

// add records path; it returns report (an event is due), and full (the
// set has just filled up: the event must say further tags go unreported).
func (s *DeniedSet) add(path string) (report, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return false, false
	}
	if _, ok := s.tags[path]; ok {
		return false, false
	}
	if len(s.tags) >= MaxDeniedTags {
		s.full = true
		return true, true
	}
	s.tags[path] = struct{}{}
	return true, false
}
