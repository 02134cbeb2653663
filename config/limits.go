package config

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Configuration arrives from a central hub as well as from an operator's
// editor, so the loader treats it as hostile input: whatever a file says,
// parsing it must stay within a bounded amount of memory and time. The
// dangerous shapes are those whose cost is not proportional to the bytes:
// YAML aliases (a 368-byte file of nested aliases expands to billions of
// values; the key index and the decoder both follow aliases), deep nesting
// (key paths are rebuilt at every level) and very long lists. The limits
// below are checked on the parsed tree, before anything follows an alias,
// and each is far above what a real gateway configuration needs. Measured
// figures for files at the limits: docs/configuration.md, "Limits".
const (
	// MaxFileSize bounds a configuration file (also after ${NAME}
	// expansion): a gateway with hundreds of devices fits in a tenth of it.
	MaxFileSize = 1 << 20
	// MaxDepth bounds how deep blocks and lists nest, aliases included.
	MaxDepth = 32
	// MaxListItems bounds the items of one list (tags of one device, …).
	MaxListItems = 20_000
	// MaxKeys bounds the keys of one block: the decoder compares every
	// key of a block with every other (duplicate keys are an error).
	MaxKeys = 1000
	// MaxValues bounds the keys, values and list items of the whole file
	// as the loader sees it, every use of an alias counting its block again.
	// Likewise the text of its keys and values, aliases written out, must
	// fit in MaxFileSize: validation costs what the text costs (an
	// expression is compiled once per use), so an alias may save typing
	// but not multiply that cost past what a file could hold.
	MaxValues = 100_000
	// maxSeparators bounds, before parsing, the characters that can start
	// a value (see checkDocument): 2× MaxValues, so parsing costs at most
	// twice what a file within the limits costs.
	maxSeparators = 2 * MaxValues
	// maxPathBytes bounds the total length of the key paths the loader
	// records ("sources[3].modbus.tags[7].name"): long keys nested deep,
	// repeated by aliases, cost memory beyond their bytes in the file.
	maxPathBytes = 16 << 20
)

var errTooLarge = fmt.Errorf("the configuration is larger than %d KiB", MaxFileSize>>10)

// checkDocument parses data, which is at most MaxFileSize bytes, and checks
// it against the limits above: syntax errors and crossed limits are its
// problems. Before parsing it bounds the size of the parsed tree itself:
// every value but the first starts after a line break or one of , : - ? [ {
// (block and flow syntax), so counting those characters, wherever they
// are, bounds the values a text can hold without parsing it.
func checkDocument(file string, data []byte) (*yaml.Node, Problems) {
	seps := 0
	for _, c := range data {
		switch c {
		case '\n', ',', ':', '-', '?', '[', '{':
			seps++
		}
	}
	// Separators overcount values (a flow item "{name: r1, address: 1}"
	// costs more of them than values), so this bound is looser than
	// MaxValues — at 1× a 10,000-tag device list was refused before its
	// values were counted — and the walk below applies MaxValues exactly.
	if seps > maxSeparators {
		return nil, Problems{{File: file, Msg: fmt.Sprintf("the configuration is too dense: more than %d line breaks, commas, colons and dashes (a file holds at most %d keys, values and list items)", maxSeparators, MaxValues)}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxProblems(file, err)
	}
	return &root, checkLimits(file, &root)
}

// limitWalk walks the tree as the decoder would, every alias expanded, and
// stops at the first limit crossed.
type limitWalk struct {
	file       string
	values     int
	textBytes  int // of keys and scalar values, each alias use counted again
	pathBytes  int
	problem    *Problem
	aliasLine  int // line of the outermost alias being expanded, 0 outside
	expandedBy string
}

// checkLimits reports the first limit the document crosses, placed at the
// line that crosses it (for an alias: where the alias is used).
func checkLimits(file string, root *yaml.Node) Problems {
	w := &limitWalk{file: file}
	w.walk(root, 0, 0)
	if w.problem != nil {
		return Problems{*w.problem}
	}
	return nil
}

func (w *limitWalk) fail(n *yaml.Node, msg string) {
	line := n.Line
	if w.aliasLine > 0 {
		line = w.aliasLine
		msg += " (" + w.expandedBy + ")"
	}
	w.problem = &Problem{File: w.file, Line: line, Msg: msg}
}

// walk visits n at depth, whose key path is pathLen bytes long.
func (w *limitWalk) walk(n *yaml.Node, depth, pathLen int) {
	if w.problem != nil || n == nil {
		return
	}
	w.values++
	w.pathBytes += pathLen
	if n.Kind == yaml.ScalarNode {
		w.textBytes += len(n.Value)
	}
	switch {
	case w.values > MaxValues:
		w.fail(n, fmt.Sprintf("the configuration has more than %d keys, values and list items (each use of an alias counts its block again)", MaxValues))
		return
	case w.textBytes > MaxFileSize:
		w.fail(n, fmt.Sprintf("the configuration, each alias written out, holds more than %d KiB of keys and values", MaxFileSize>>10))
		return
	case w.pathBytes > maxPathBytes:
		w.fail(n, fmt.Sprintf("the configuration's key paths add up to more than %d MiB (long keys nested deep, or repeated by aliases)", maxPathBytes>>20))
		return
	case depth > MaxDepth:
		w.fail(n, fmt.Sprintf("blocks and lists are nested more than %d levels deep", MaxDepth))
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			w.walk(c, depth, pathLen)
		}
	case yaml.MappingNode:
		if len(n.Content)/2 > MaxKeys {
			w.fail(n, fmt.Sprintf("a block has %d keys, more than the %d allowed", len(n.Content)/2, MaxKeys))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := len(n.Content[i].Value) + 1
			w.walk(n.Content[i], depth+1, pathLen+k)
			w.walk(n.Content[i+1], depth+1, pathLen+k)
		}
	case yaml.SequenceNode:
		if len(n.Content) > MaxListItems {
			w.fail(n, fmt.Sprintf("a list has %d items, more than the %d allowed", len(n.Content), MaxListItems))
			return
		}
		for i, c := range n.Content {
			w.walk(c, depth+1, pathLen+len(strconv.Itoa(i))+2)
		}
	case yaml.AliasNode:
		if w.aliasLine == 0 {
			w.aliasLine, w.expandedBy = n.Line, "expanding the alias *"+n.Value
			defer func() { w.aliasLine, w.expandedBy = 0, "" }()
		}
		// An alias cannot refer to a block that contains it (yaml.v3
		// refuses that), so this recursion ends; its cost is bounded
		// by the counts above.
		w.walk(n.Alias, depth, pathLen)
	}
}
