package config

import (
	"reflect"
	"strconv"
	"strings"
)

// The decoder reports a mistake with a line number and a Go type name.
// To say it in the operator's words — which key, what it expects, which key
// was probably meant — the loader needs the Go type decoded at a key path
// and the keys valid there. These helpers read both from the Config type
// itself, following the yaml tags as gopkg.in/yaml.v3 does, so they never
// go out of step with the structs. They are used for messages only: the
// decoding itself stays yaml.v3's.

var configType = reflect.TypeOf(Config{})

// segment is one step of a key path: a key, or a list index when key is "".
type segment struct {
	key   string
	index int
}

// splitPath parses "sinks[0].mqtt.url"; ok is false for a path that cannot
// be split back (a map key holding '.' or '[').
func splitPath(p string) (segs []segment, ok bool) {
	for _, part := range strings.Split(p, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" && rest == "" {
			return nil, false
		}
		if key != "" {
			segs = append(segs, segment{key: key})
		}
		for rest != "" {
			num, after, found := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !found || err != nil {
				return nil, false
			}
			segs = append(segs, segment{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return segs, true
}

// typeAt returns the type decoded at path below root (pointers removed)
// and every type passed on the way, root first; nil when the path leaves
// the schema (an unknown key, an `any` value).
func typeAt(root reflect.Type, path string) (reflect.Type, []reflect.Type) {
	t := deref(root)
	chain := []reflect.Type{t}
	if path == "" {
		return t, chain
	}
	segs, ok := splitPath(path)
	if !ok {
		return nil, nil
	}
	for _, s := range segs {
		if s.key == "" {
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return nil, nil
			}
			t = deref(t.Elem())
		} else if t = child(t, s.key); t == nil {
			return nil, nil
		}
		chain = append(chain, t)
	}
	return t, chain
}

// child is the type under key in a struct (inline fields included) or a
// map with string keys; nil if key is not valid there.
func child(t reflect.Type, key string) reflect.Type {
	switch t.Kind() {
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			return deref(t.Elem())
		}
	case reflect.Struct:
		var found reflect.Type
		eachField(t, func(name string, ft reflect.Type) bool {
			if name == key {
				found = deref(ft)
				return false
			}
			return true
		})
		return found
	}
	return nil
}

// keysOf lists the keys valid in a struct, in declaration order; nil for
// other kinds.
func keysOf(t reflect.Type) []string {
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	eachField(t, func(name string, _ reflect.Type) bool {
		keys = append(keys, name)
		return true
	})
	return keys
}

// eachField calls f with every key of struct t and the field's type,
// descending into inline structs, until f returns false. A field is named
// as yaml.v3 names it: its tag, else its name in lower case.
func eachField(t reflect.Type, f func(name string, ft reflect.Type) bool) bool {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			if ft := deref(sf.Type); ft.Kind() == reflect.Struct {
				if !eachField(ft, f) {
					return false
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		if !f(name, sf.Type) {
			return false
		}
	}
	return true
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// suggest returns the key among keys that name was probably meant to be
// ("modbuss" → "modbus", "brokr" → "brokers", "clientId" → "client_id"),
// or "" when none is close enough to be a typo.
func suggest(name string, keys []string) string {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	best, bestD := "", 0
	for _, k := range keys {
		if norm(k) == norm(name) {
			return k
		}
		d := distance(name, k)
		if limit := min(2, max(1, len(k)/3)); d <= limit && (best == "" || d < bestD) {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours each cost 1.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
