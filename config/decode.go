package config

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf"
)

// The decoder's messages name Go types ("cannot unmarshal !!str `soon` into
// time.Duration", "field brokr not found in type kafka.Config"). This file
// turns each into the key path and a sentence in the operator's words, and
// records which validation errors would only repeat it (a misspelt block
// name also makes "exactly one protocol block is required" fail).

var (
	lineRef       = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownField  = regexp.MustCompile(`^field (.+) not found in type (\S+)$`)
	fieldTwice    = regexp.MustCompile(`^field (\S+) already set in type \S+$`)
	keyTwice      = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
	cannotDecode  = regexp.MustCompile("^cannot unmarshal (\\S+)(?: `(.*)`)? into (.+)$")
	durationType  = reflect.TypeOf(time.Duration(0))
	secretType    = reflect.TypeOf(conf.Secret{})
	maxValueShown = 40
	// maxDecodeProblems bounds the decoder's errors turned into problems:
	// a file of a hundred thousand unknown keys is one mistake, and each
	// problem costs a lookup in the index.
	maxDecodeProblems = 100
)

// shadow is the set of key paths whose validation errors would repeat a
// decode error, so that each mistake is reported once.
type shadow struct {
	under map[string]bool // the path and every path below it
	exact map[string]bool // the path only
}

func newShadow() *shadow { return &shadow{under: map[string]bool{}, exact: map[string]bool{}} }

// add hides errors at path and below it, and at its parent itself: a
// block that is missing or misspelt fails its parent's checks ("exactly
// one protocol block", "url or urls is required") for the same reason.
func (s *shadow) add(path string) {
	s.under[path] = true
	s.exact[parentPath(path)] = true
}

func (s *shadow) hides(path string) bool {
	if s.exact[path] || s.under[""] {
		return true
	}
	for p := path; p != ""; p = parentPath(p) {
		if s.under[p] {
			return true
		}
	}
	return false
}

// decodeProblems turns the decoder's list of errors into Problems, adding
// to sh the paths they shadow.
func decodeProblems(file string, te *yaml.TypeError, idx *index, sh *shadow) Problems {
	var ps Problems
	used := map[string]bool{} // values already blamed: the decoder reports in document order
	for i, e := range te.Errors {
		if i == maxDecodeProblems {
			ps = append(ps, Problem{File: file, Msg: fmt.Sprintf("%d more keys or values cannot be read besides the %d shown", len(te.Errors)-i, i)})
			break
		}
		m := lineRef.FindStringSubmatch(e)
		if m == nil {
			ps = append(ps, Problem{File: file, Msg: "cannot read the file: " + e})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		p := Problem{File: file, Line: line}
		switch msg := m[2]; {
		case unknownField.MatchString(msg):
			u := unknownField.FindStringSubmatch(msg)
			p.Key = pickKey(idx.keysNamed(line, u[1]), u[2])
			if parent, ok := secretBlock(p.Key, u[2]); ok {
				// {hunter2} is a key: the secret pasted into its block.
				p.Key = parent
				p.Msg = unknownSecretKeyMessage(parent, u[1])
				break
			}
			p.Msg = unknownKeyMessage(p.Key, u[1], sh)
		case fieldTwice.MatchString(msg):
			name := fieldTwice.FindStringSubmatch(msg)[1]
			p.Key = first(idx.keysNamed(line, name))
			p.Msg = fmt.Sprintf("key %q is given twice", name)
		case keyTwice.MatchString(msg):
			k := keyTwice.FindStringSubmatch(msg)
			p.Key = first(idx.keysNamed(line, k[1]))
			p.Msg = fmt.Sprintf("key %q is written twice (first on line %s)", k[1], k[2])
			// The decoder then skips the whole block holding it (a list
			// loses that element): what Validate would say about the
			// block, or the list's length, is not news.
			if p.Key != "" {
				block := parentPath(p.Key)
				sh.under[block] = true
				if strings.HasSuffix(block, "]") {
					sh.exact[parentPath(block)] = true
				}
			}
		case cannotDecode.MatchString(msg):
			c := cannotDecode.FindStringSubmatch(msg)
			path, node := valueAt(idx, line, c[1], c[2], c[3], used)
			used[path] = true
			p.Key = path
			p.Msg = expectation(path, c[3], c[1], node)
			if path == "" && c[3] == configType.String() {
				got := "a single value"
				if c[1] == "!!seq" {
					got = "a list"
				}
				p.Msg = "the file must be a block of keys (node, sources, sinks, …), not " + got
				sh.under[""] = true // nothing was decoded
			}
			// The decoder drops a list element it cannot decode, so the
			// indices Validate would report after it are off by one.
			if strings.HasSuffix(path, "]") {
				sh.under[parentPath(path)] = true
			}
		default:
			p.Msg = msg
		}
		if p.Key != "" {
			sh.add(p.Key)
		}
		ps = append(ps, p)
	}
	return ps
}

// pickKey chooses among same-named keys on one line the one whose parent
// decodes into goType (the decoder names the struct type).
func pickKey(paths []string, goType string) string {
	for _, p := range paths {
		if t, _ := typeAt(configType, parentPath(p)); t != nil && t.String() == goType {
			return p
		}
	}
	return first(paths)
}

func first(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	return paths[0]
}

// unknownKeyMessage says which key was probably meant, among the keys
// valid in the block holding it, and shadows that key's own errors ("is
// required") since they only repeat the misspelling.
func unknownKeyMessage(path, name string, sh *shadow) string {
	msg := fmt.Sprintf("unknown key %q", name)
	if path == "" {
		return msg
	}
	parent := parentPath(path)
	t, _ := typeAt(configType, parent)
	if t == nil {
		return msg
	}
	keys := keysOf(t)
	if s := suggest(name, keys); s != "" {
		// Only the suggested key's own "is required" repeats the
		// misspelling; what is written under it, if anything, is real.
		sh.exact[conf.JoinPath(parent, s)] = true
		return msg + fmt.Sprintf("; did you mean %q?", s)
	}
	if len(keys) > 0 && len(keys) <= 12 {
		return msg + " (valid here: " + strings.Join(keys, ", ") + ")"
	}
	return msg
}

// valueAt finds the value the decoder refused: written on line, of the
// node kind its tag names, with the text it quoted (cut to 7 characters
// and "..." when long), and decoded into goType. Several values can share a
// line in flow style ({name: a, address: x}); the Go type tells them apart,
// and of two alike the first not yet used is taken.
func valueAt(idx *index, line int, tag, quoted, goType string, used map[string]bool) (string, *yaml.Node) {
	var fallback string
	for _, p := range idx.valueLines[line] {
		n := idx.values[p]
		if used[p] || !nodeMatches(n, tag, quoted) {
			continue
		}
		if fallback == "" {
			fallback = p
		}
		if t, _ := typeAt(configType, p); t != nil && t.String() == strings.TrimLeft(goType, "*") {
			return p, n
		}
	}
	if fallback != "" {
		return fallback, idx.values[fallback]
	}
	return "", nil
}

func nodeMatches(n *yaml.Node, tag, quoted string) bool {
	switch tag {
	case "!!seq":
		return n.Kind == yaml.SequenceNode
	case "!!map":
		return n.Kind == yaml.MappingNode
	}
	if n.Kind != yaml.ScalarNode {
		return false
	}
	if short, ok := strings.CutSuffix(quoted, "..."); ok && len(n.Value) > 10 {
		return strings.HasPrefix(n.Value, short)
	}
	return n.Value == quoted
}

// expectation says what the key at path takes, in the operator's words,
// and what was written instead. A value is never repeated when it may be a
// secret written in clear.
func expectation(path, goType, tag string, n *yaml.Node) string {
	t, chain := typeAt(configType, path)
	if path == "" && goType != configType.String() {
		t, chain = nil, nil // the value was not found: say less rather than something wrong
	}
	// A block holding a secret (sasl, auth_header, auth), written as one
	// value, may be that secret pasted in its place.
	secret := t != nil && holdsSecret(t)
	for _, ct := range chain {
		secret = secret || ct == secretType
	}
	want := "a value of another kind"
	if t != nil {
		want = describe(t, tag)
	} else if goType == "time.Duration" {
		want = describe(durationType, tag)
	}
	got := ""
	switch {
	case secret || n == nil:
	case n.Kind == yaml.SequenceNode:
		got = "a list"
	case n.Kind == yaml.MappingNode:
		got = "a block of keys"
	case n.Kind == yaml.ScalarNode:
		v := n.Value
		if len(v) > maxValueShown {
			v = v[:maxValueShown] + "…"
		}
		got = strconv.Quote(v)
	}
	if got == "" {
		return "expected " + want
	}
	return "expected " + want + ", not " + got
}

// describe names what a Go type takes, as a reader of the YAML file would
// say it.
func describe(t reflect.Type, tag string) string {
	switch {
	case t == secretType:
		return "a secret reference like {env: NAME} or {file: PATH}"
	case t == durationType:
		if tag == "!!int" || tag == "!!float" {
			return "a duration like 1s or 500ms (a number needs a unit)"
		}
		return "a duration like 1s or 500ms"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Int8, reflect.Int16, reflect.Int32:
		bits := t.Bits()
		return fmt.Sprintf("a whole number from %d to %d", -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1)
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return "a whole number, 0 or more"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(1)<<t.Bits()-1)
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a single value"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a block of name: value pairs"
	case reflect.Struct:
		keys := keysOf(t)
		if len(keys) > 6 {
			keys = append(keys[:6:6], "…")
		}
		return "a block of keys (" + strings.Join(keys, ", ") + ")"
	}
	return "a value of another kind"
}

// fraction is a number with a fraction written where a whole number
// belongs: yaml.v3 truncates it without a word (unit_id: 1.5 decodes as
// 1, qos: 0.9 as 0), so a typo would silently address another register
// or device.
type fraction struct {
	path string
	line int
	text string
	want reflect.Type
}

// findFractions walks the document along the Config type, building a key
// path only where it finds one; aliases are not followed (their target is
// walked where it is written).
func findFractions(root *yaml.Node) []fraction {
	if root == nil || root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	var out []fraction
	var segs []string
	var walk func(n *yaml.Node, t reflect.Type)
	walk = func(n *yaml.Node, t reflect.Type) {
		if t == nil {
			return
		}
		t = deref(t)
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				segs = append(segs, "."+n.Content[i].Value)
				walk(n.Content[i+1], child(t, n.Content[i].Value))
				segs = segs[:len(segs)-1]
			}
		case yaml.SequenceNode:
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return
			}
			for i, e := range n.Content {
				segs = append(segs, "["+strconv.Itoa(i)+"]")
				walk(e, t.Elem())
				segs = segs[:len(segs)-1]
			}
		case yaml.ScalarNode:
			if n.ShortTag() != "!!float" || t == durationType || !isInteger(t.Kind()) {
				return
			}
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return // a whole number after all (1e9, 2.0)
			}
			out = append(out, fraction{path: strings.TrimPrefix(strings.Join(segs, ""), "."), line: n.Line, text: n.Value, want: t})
		}
	}
	walk(root.Content[0], configType)
	return out
}

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// fractionProblems reports the fractions not hidden by a decode error.
func fractionProblems(file string, fs []fraction, sh *shadow) Problems {
	var ps Problems
	for _, f := range fs {
		if sh.hides(f.path) {
			continue
		}
		ps = append(ps, Problem{File: file, Line: f.line, Key: f.path,
			Msg: fmt.Sprintf("expected %s, not %s", describe(f.want, "!!float"), strconv.Quote(f.text))})
	}
	return ps
}

// holdsSecret reports whether struct t has a secret among its own keys.
func holdsSecret(t reflect.Type) bool {
	found := false
	if t.Kind() == reflect.Struct {
		eachField(t, func(_ string, ft reflect.Type) bool {
			found = deref(ft) == secretType
			return !found
		})
	}
	return found
}

// secretBlock reports whether an unknown key (at path, in a struct of Go
// type goType) sits in a secret or in a small credential block holding
// one (sasl, auth_header, auth: at most credentialKeys keys), and returns
// the block's path: the key's name, and its path, may be the secret
// pasted there ({hunter2} is a key without a value). A typo in a
// component's block (dozens of keys) is still named.
func secretBlock(path, goType string) (string, bool) {
	parent := parentPath(path)
	t, _ := typeAt(configType, parent)
	if path == "" || t == nil {
		return "", goType == secretType.String()
	}
	return parent, t == secretType || holdsSecret(t) && len(keysOf(t)) <= credentialKeys
}

// credentialKeys bounds the keys of a block counted as a credential block.
const credentialKeys = 5

// unknownSecretKeyMessage is unknownKeyMessage for a block holding a
// secret: the valid key probably meant may be named, what is written not.
func unknownSecretKeyMessage(parent, name string) string {
	const hidden = " (what is written is not shown, in case it is the secret itself)"
	t, _ := typeAt(configType, parent)
	if t == nil {
		return "unknown key" + hidden
	}
	keys := keysOf(t)
	if s := suggest(name, keys); s != "" {
		return fmt.Sprintf("unknown key; did you mean %q?", s) + hidden
	}
	return "unknown key; valid here: " + strings.Join(keys, ", ") + hidden
}
