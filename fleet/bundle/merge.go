package bundle

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The merge works on yaml.Node trees, not on config.Config values: a
// layer is partial (a group sets one key of one sink), so it has no typed
// form, and the tree keeps which layer set each value for the messages.
//
// Rules, for a higher layer written over a lower one:
//   - blocks (maps) merge key by key, recursively;
//   - a named list (every item a block with a `name` key: sources, sinks,
//     processors, rules, auth.users …) merges by name: an
//     item replaces the lower item of the same name whole, in its place, or
//     is added at the end; an item `{name: X, remove: true}` removes X;
//   - anything else (values, other lists, a change of shape) replaces the
//     lower value whole; `[]` empties a list. write_policies (no names) is
//     such a list: a layer that writes it writes the whole policy.
//
// Groups are peers: they are first united, and two groups giving the same
// key or named item different values is a tie (ErrTie), never resolved by
// order. The union is then written over the base, and the site over that.

// merger copies layer trees and remembers which layer set each node.
type merger struct {
	origin map[*yaml.Node]string
	ties   []string
}

func newMerger() *merger { return &merger{origin: map[*yaml.Node]string{}} }

// own deep-copies n and records label as the origin of every node in it,
// so merging never changes a parsed layer.
func (m *merger) own(n *yaml.Node, label string) *yaml.Node {
	if n == nil {
		return nil
	}
	c := &yaml.Node{Kind: n.Kind, Tag: n.ShortTag(), Value: n.Value}
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, x := range n.Content {
			c.Content[i] = m.own(x, label)
		}
	}
	m.origin[c] = label
	return c
}

// itemName returns the name of a list item that is a block with a scalar
// `name` key.
func itemName(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.MappingNode {
		return "", false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value, true
		}
	}
	return "", false
}

// isNamedList reports whether every item of a non-empty sequence is named.
func isNamedList(n *yaml.Node) bool {
	if n == nil || n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return false
	}
	for _, it := range n.Content {
		if _, ok := itemName(it); !ok {
			return false
		}
	}
	return true
}

// removeMarker reports whether item is {name: X, remove: true}; any other
// use of `remove` is an error.
func removeMarker(item *yaml.Node, path string) (bool, error) {
	for i := 0; i+1 < len(item.Content); i += 2 {
		if item.Content[i].Value != "remove" {
			continue
		}
		v := item.Content[i+1]
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || !strings.EqualFold(v.Value, "true") {
			return false, fmt.Errorf("%s.remove: write `remove: true` to remove the item, or leave the key out", path)
		}
		if len(item.Content) != 4 {
			return false, fmt.Errorf("%s: an item with `remove: true` takes only its name", path)
		}
		return true, nil
	}
	return false, nil
}

func mapGet(n *yaml.Node, key string) (int, *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return i, n.Content[i+1]
		}
	}
	return -1, nil
}

// overlay writes upper over lower (either may be nil) and returns the
// result; both are trees the merger owns. Remove markers are consumed.
func (m *merger) overlay(lower, upper *yaml.Node, path string) (*yaml.Node, error) {
	switch {
	case upper == nil:
		return lower, nil
	case upper.Kind == yaml.MappingNode:
		res := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.origin[res] = m.origin[upper]
		if lower != nil && lower.Kind == yaml.MappingNode {
			res.Content = slices.Clone(lower.Content)
			m.origin[res] = m.origin[lower]
		}
		for i := 0; i+1 < len(upper.Content); i += 2 {
			k, v := upper.Content[i], upper.Content[i+1]
			at, old := mapGet(res, k.Value)
			nv, err := m.overlay(old, v, join(path, k.Value))
			if err != nil {
				return nil, err
			}
			if at >= 0 {
				res.Content[at+1] = nv
			} else {
				res.Content = append(res.Content, k, nv)
			}
		}
		return res, nil
	case isNamedList(upper):
		if !isNamedList(lower) {
			lower = nil
		}
		return m.mergeNamed(lower, upper, path)
	default:
		// Replaced whole; a named list inside is still cleaned of markers.
		return m.overlayNew(upper, path)
	}
}

// overlayNew returns upper written over nothing: markers dropped.
func (m *merger) overlayNew(n *yaml.Node, path string) (*yaml.Node, error) {
	switch {
	case n.Kind == yaml.MappingNode || isNamedList(n):
		return m.overlay(nil, n, path)
	case n.Kind == yaml.SequenceNode:
		res := &yaml.Node{Kind: n.Kind, Tag: n.Tag}
		m.origin[res] = m.origin[n]
		for i, it := range n.Content {
			c, err := m.overlayNew(it, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			res.Content = append(res.Content, c)
		}
		return res, nil
	}
	return n, nil
}

// mergeNamed merges two named lists by name (lower may be nil).
func (m *merger) mergeNamed(lower, upper *yaml.Node, path string) (*yaml.Node, error) {
	res := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	m.origin[res] = m.origin[upper]
	if lower != nil {
		res.Content = slices.Clone(lower.Content)
		m.origin[res] = m.origin[lower]
	}
	seen := map[string]bool{}
	for _, it := range upper.Content {
		name, _ := itemName(it)
		at := fmt.Sprintf("%s[%s]", path, name)
		if seen[name] {
			return nil, fmt.Errorf("%s: %w: the name %q appears twice in the list", m.origin[it], ErrLayer, name)
		}
		seen[name] = true
		rm, err := removeMarker(it, at)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", m.origin[it], ErrLayer, err)
		}
		idx := slices.IndexFunc(res.Content, func(x *yaml.Node) bool { n, _ := itemName(x); return n == name })
		if rm {
			if idx >= 0 {
				res.Content = slices.Delete(res.Content, idx, idx+1)
			}
			continue
		}
		nv, err := m.overlayNew(it, at)
		if err != nil {
			return nil, err
		}
		if idx >= 0 {
			res.Content[idx] = nv
		} else {
			res.Content = append(res.Content, nv)
		}
	}
	return res, nil
}

// union unites two groups' trees: what only one sets is kept, what both
// set must be equal, else it is a tie (recorded, not returned, so that
// every tie is reported at once). Remove markers are kept for overlay.
func (m *merger) union(a, b *yaml.Node, path string) *yaml.Node {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.Kind == yaml.MappingNode && b.Kind == yaml.MappingNode:
		res := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: slices.Clone(a.Content)}
		m.origin[res] = m.origin[a]
		for i := 0; i+1 < len(b.Content); i += 2 {
			k, v := b.Content[i], b.Content[i+1]
			at, old := mapGet(res, k.Value)
			if at < 0 {
				res.Content = append(res.Content, k, v)
				continue
			}
			res.Content[at+1] = m.union(old, v, join(path, k.Value))
		}
		return res
	case isNamedList(a) && isNamedList(b):
		res := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: slices.Clone(a.Content)}
		m.origin[res] = m.origin[a]
		for _, it := range b.Content {
			name, _ := itemName(it)
			idx := slices.IndexFunc(res.Content, func(x *yaml.Node) bool { n, _ := itemName(x); return n == name })
			if idx < 0 {
				res.Content = append(res.Content, it)
			} else if !equalNode(res.Content[idx], it) {
				m.tie(fmt.Sprintf("%s[%s]", path, name), res.Content[idx], it)
			}
		}
		return res
	default:
		if !equalNode(a, b) {
			m.tie(path, a, b)
		}
		return a
	}
}

func (m *merger) tie(path string, a, b *yaml.Node) {
	m.ties = append(m.ties, fmt.Sprintf("%s: %s and %s set different values; set it in one group only, or in the base or the site layer instead",
		orRoot(path), m.origin[a], m.origin[b]))
}

// equalNode compares two trees by content (kind, resolved tag, value);
// a block's key order does not count, as it does not for the gateway.
func equalNode(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || a.ShortTag() != b.ShortTag() || a.Value != b.Value || len(a.Content) != len(b.Content) {
		return false
	}
	if a.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(a.Content); i += 2 {
			_, bv := mapGet(b, a.Content[i].Value)
			if bv == nil || !equalNode(a.Content[i+1], bv) {
				return false
			}
		}
		return true
	}
	for i := range a.Content {
		if !equalNode(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}
