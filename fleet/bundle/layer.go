package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
)

// Kind is a layer's place in the precedence order: site > group > base.
type Kind int

// Layer kinds, lowest precedence first.
const (
	KindBase Kind = iota
	KindGroup
	KindSite
)

// Layer is one partial Weir configuration document (the same keys as
// config.Config) owned by the fleet base, a group or a site.
type Layer struct {
	Kind Kind
	// Name is the group's name or the site's id; empty for the base.
	Name string
	Data []byte
}

// String names the layer as messages do: `base`, `group "eu"`, `site "s1"`.
func (l Layer) String() string {
	switch l.Kind {
	case KindBase:
		return "base"
	case KindGroup:
		return fmt.Sprintf("group %q", l.Name)
	default:
		return fmt.Sprintf("site %q", l.Name)
	}
}

// idPattern bounds site ids and group names: they appear in subjects,
// file names and messages.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidID reports whether s may name a site or a group.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// Limits on a layer, the same as on a configuration file (config.Max*):
// a layer is outside input to the hub as a file is to the gateway.
const (
	maxLayerSize = config.MaxFileSize
	maxDepth     = config.MaxDepth
	maxListItems = config.MaxListItems
	maxKeys      = config.MaxKeys
	// maxSeparators bounds, before parsing, the characters that can start
	// a value, as config's loader does, so parsing cost is bounded.
	maxSeparators = 2 * config.MaxValues
)

// standardTags are the only tags a layer may use: a custom tag would be
// decoded differently by the gateway than the hub rendered it.
var standardTags = map[string]bool{"!!str": true, "!!int": true, "!!float": true, "!!bool": true,
	"!!null": true, "!!map": true, "!!seq": true, "!!timestamp": true}

// parseLayer parses one layer into its root mapping (nil for an empty
// document). Anchors, aliases and merge keys are refused: each layer is
// rendered into a tree others override key by key, and an alias shared
// between keys would make one override change two places.
func parseLayer(l Layer) (*yaml.Node, error) {
	where := l.String()
	if len(l.Data) > maxLayerSize {
		return nil, fmt.Errorf("%s: %w: larger than %d KiB", where, ErrLayer, maxLayerSize>>10)
	}
	if n := separators(l.Data); n > maxSeparators {
		return nil, fmt.Errorf("%s: %w: more than %d values", where, ErrLayer, maxSeparators)
	}
	dec := yaml.NewDecoder(bytes.NewReader(l.Data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w: %s", where, ErrLayer, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w: one YAML document expected", where, ErrLayer)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: %w: line %d: the document must be a block of keys", where, ErrLayer, root.Line)
	}
	if err := checkTree(root, "", 1); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, ErrLayer, err)
	}
	return root, nil
}

// separators counts the characters that can start a value (see
// config/limits.go): every value but the first follows one of them.
func separators(data []byte) int {
	n := 0
	for _, c := range data {
		switch c {
		case '\n', ',', ':', '-', '?', '[', '{':
			n++
		}
	}
	return n
}

// checkTree refuses what a layer may not hold, with the line and key path.
func checkTree(n *yaml.Node, path string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("line %d: %s: nested deeper than %d levels", n.Line, orRoot(path), maxDepth)
	}
	if n.Anchor != "" || n.Kind == yaml.AliasNode {
		return fmt.Errorf("line %d: %s: anchors and aliases (& and *) are not allowed in a layer; write the value out", n.Line, orRoot(path))
	}
	if n.Tag != "" && !standardTags[n.Tag] {
		return fmt.Errorf("line %d: %s: tag %s is not allowed in a layer", n.Line, orRoot(path), n.Tag)
	}
	switch n.Kind {
	case yaml.MappingNode:
		if len(n.Content)/2 > maxKeys {
			return fmt.Errorf("line %d: %s: more than %d keys", n.Line, orRoot(path), maxKeys)
		}
		seen := map[string]bool{}
		for i := 0; i < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: %s: keys must be plain words", k.Line, orRoot(path))
			}
			if k.ShortTag() == "!!merge" {
				return fmt.Errorf("line %d: %s: merge keys (<<) are not allowed in a layer", k.Line, orRoot(path))
			}
			if seen[k.Value] {
				return fmt.Errorf("line %d: %s: key %q appears twice", k.Line, orRoot(path), k.Value)
			}
			seen[k.Value] = true
			if err := checkTree(k, join(path, k.Value), depth+1); err != nil {
				return err
			}
			if err := checkTree(v, join(path, k.Value), depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		if len(n.Content) > maxListItems {
			return fmt.Errorf("line %d: %s: more than %d items", n.Line, orRoot(path), maxListItems)
		}
		for i, c := range n.Content {
			if err := checkTree(c, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}
