package latest

import (
	"slices"
	"strings"

	"github.com/weir-edge/weir/model"
)

// Node is one direct child of a prefix in the tag tree: a folder (Tags
// tags below it), a tag (HasValue, with its newest Sample), or both when
// a tag's path is also the prefix of other tags.
type Node struct {
	Name     string // the level below the prefix
	Path     string // the full path
	Tags     int    // tags strictly below Path; 0: not a folder
	HasValue bool   // Path is a tag itself; Sample is its newest sample
	Sample   model.Sample
}

// Children returns the direct children of prefix ("" for the root;
// slashes at either end ignored) whose names sort after `after` (byte
// order; "" from the first), at most limit of them (limit <= 0: all),
// sorted by name, and how many children prefix has in all. It scans the
// store once under the read lock: linear in the tags held (about 10 ms
// for 100,000 tags on a small edge CPU; see BenchmarkChildren), which
// keeps Process free of an index to maintain.
func (l *Store) Children(prefix, after string, limit int) (nodes []Node, total int) {
	prefix = strings.Trim(prefix, "/")
	under := ""
	if prefix != "" {
		under = prefix + "/"
	}
	type agg struct {
		tags int
		leaf bool
		s    model.Sample
	}
	kids := map[string]*agg{}
	l.mu.RLock()
	for p, s := range l.m {
		if !strings.HasPrefix(p, under) || len(p) == len(under) {
			continue
		}
		rest := p[len(under):]
		name, _, below := strings.Cut(rest, "/")
		a := kids[name]
		if a == nil {
			a = &agg{}
			kids[name] = a
		}
		if below {
			a.tags++
		} else {
			a.leaf, a.s = true, s
		}
	}
	l.mu.RUnlock()
	total = len(kids)
	names := make([]string, 0, len(kids))
	for n := range kids {
		if n > after {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if limit > 0 && len(names) > limit {
		names = names[:limit]
	}
	nodes = make([]Node, len(names))
	for i, n := range names {
		a := kids[n]
		nodes[i] = Node{Name: n, Path: under + n, Tags: a.tags, HasValue: a.leaf, Sample: a.s}
	}
	return nodes, total
}
