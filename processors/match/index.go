package match

// Index finds the first of several filter lists that matches a path. A
// processor with several rules, each with its own `match:`, resolves a
// sample's rule with one cached lookup instead of one per rule.
type Index struct {
	lists    []*Matcher
	cache    map[string]int
	maxCache int
}

// NewIndex compiles one filter list per rule. Validate each list first for
// field paths; NewIndex reports only the first error.
func NewIndex(lists [][]string) (*Index, error) {
	x := &Index{cache: make(map[string]int), maxCache: DefaultCacheSize}
	for _, l := range lists {
		m, err := Compile(l)
		if err != nil {
			return nil, err
		}
		x.lists = append(x.lists, m)
	}
	return x, nil
}

// Lookup returns the index of the first list that matches path, or -1.
func (x *Index) Lookup(path string) int {
	if i, ok := x.cache[path]; ok {
		return i
	}
	i := -1
	for j, m := range x.lists {
		if m.all || m.walk(path) {
			i = j
			break
		}
	}
	if len(x.cache) >= x.maxCache {
		clear(x.cache)
	}
	x.cache[path] = i
	return i
}
