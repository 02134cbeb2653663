package config

import (
	"runtime"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf"
)

// index maps dotted key paths ("sinks[0].mqtt.qos") to the line where the
// key (or list element) is written, and lines back to the key written
// there, so errors from validation and from the decoder can both be placed.
type index struct {
	lines map[string]int
	keys  map[int][]string // every key path written on a line, in order
	// values holds the value node of every path; valueLines the paths
	// whose value starts on a line (the decoder reports the value's line).
	values     map[string]*yaml.Node
	valueLines map[int][]string
}

// lazyIndex builds the index of a document that has passed checkDocument
// on first use.
type lazyIndex struct {
	data []byte
	idx  *index
}

// get returns the index, nil for a nil lazyIndex.
func (l *lazyIndex) get() *index {
	if l == nil {
		return nil
	}
	if l.idx == nil {
		// The decoder's own tree of the document is garbage by now:
		// collecting it first keeps the peak at one tree, not two.
		runtime.GC()
		var root yaml.Node
		_ = yaml.Unmarshal(l.data, &root) // parsed without error before
		l.idx = newIndex(&root)
	}
	return l.idx
}

func newIndex(root *yaml.Node) *index {
	idx := &index{lines: map[string]int{}, keys: map[int][]string{},
		values: map[string]*yaml.Node{}, valueLines: map[int][]string{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		idx.walk("", root.Content[0])
	}
	return idx
}

func (idx *index) record(path string, line int) {
	idx.lines[path] = line
	idx.keys[line] = append(idx.keys[line], path)
}

// value records the node decoded at path; an alias is recorded as the node
// it stands for, whose line the decoder reports.
func (idx *index) value(path string, n *yaml.Node) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	idx.values[path] = n
	idx.valueLines[n.Line] = append(idx.valueLines[n.Line], path)
}

func (idx *index) walk(path string, n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := conf.JoinPath(path, k.Value)
			idx.record(p, k.Line)
			idx.value(p, v)
			idx.walk(p, v)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := conf.Index(path, i)
			if _, ok := idx.lines[p]; !ok {
				idx.lines[p] = v.Line
			}
			idx.value(p, v)
			idx.walk(p, v)
		}
	case yaml.AliasNode:
		if n.Alias != nil {
			idx.walk(path, n.Alias)
		}
	}
}

// lineOf finds the line of path, or of its nearest written ancestor when
// the key itself is absent (an error about a missing key points at the
// block that should hold it).
func (idx *index) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := idx.lines[p]; ok {
			return l
		}
	}
	return 0
}

// keysNamed lists the paths of the keys called name written on line (flow
// mappings put several keys on one line).
func (idx *index) keysNamed(line int, name string) []string {
	var out []string
	for _, k := range idx.keys[line] {
		if k == name || strings.HasSuffix(k, "."+name) {
			out = append(out, k)
		}
	}
	return out
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}
