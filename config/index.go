package config

import (
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
}

func newIndex(root *yaml.Node) *index {
	idx := &index{lines: map[string]int{}, keys: map[int][]string{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		idx.walk("", root.Content[0])
	}
	return idx
}

func (idx *index) record(path string, line int) {
	idx.lines[path] = line
	idx.keys[line] = append(idx.keys[line], path)
}

func (idx *index) walk(path string, n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := conf.JoinPath(path, k.Value)
			idx.record(p, k.Line)
			idx.walk(p, v)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := conf.Index(path, i)
			if _, ok := idx.lines[p]; !ok {
				idx.lines[p] = v.Line
			}
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

// keyAt is the path of the key written on line, preferring one whose last
// part is name (flow mappings put several keys on one line); "" if none.
func (idx *index) keyAt(line int, name string) string {
	keys := idx.keys[line]
	for _, k := range keys {
		if k == name || strings.HasSuffix(k, "."+name) {
			return k
		}
	}
	if len(keys) > 0 && name == "" {
		return keys[0]
	}
	return ""
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
