package bundle

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
)

// Rendered is one site's configuration: its layers merged, canonical,
// validated, hashed. It is what the hub signs into a Bundle.
type Rendered struct {
	Site string
	// Config is the canonical YAML: keys sorted, no comments, no styles,
	// two-space indent. Rendering the same layers gives the same bytes.
	Config []byte
	// Hash is the SHA-256 of Config.
	Hash [32]byte
	// origins maps each key path of Config (config's notation,
	// "sinks[0].mqtt.url") to the layer that set it.
	origins map[string]string
}

// Origin names the layer that set the key at path, or of its nearest
// enclosing block or list item ("" when unknown).
func (r *Rendered) Origin(path string) string {
	for p := path; ; p = parentOf(p) {
		if o, ok := r.origins[p]; ok {
			return o
		}
		if p == "" {
			return ""
		}
	}
}

// parentOf drops the last element of a key path ("a.b[2]" → "a.b" → "a").
func parentOf(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Problem is one reason a render is refused, placed at a key path and,
// where known, at the layer that set it.
type Problem struct {
	Key   string
	Layer string
	Msg   string
}

func (p Problem) String() string {
	s := p.Msg
	if p.Key != "" {
		s = p.Key + ": " + s
	}
	if p.Layer != "" {
		s += " (set by " + p.Layer + ")"
	}
	return s
}

// RenderError lists every problem of one site's render; it wraps the
// sentinel of its kind (ErrTie, ErrClearSecret, ErrInvalidConfig).
type RenderError struct {
	Site     string
	Kind     error
	Problems []Problem
}

func (e *RenderError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  " + p.String()
	}
	return fmt.Sprintf("site %q: %v:\n%s", e.Site, e.Kind, strings.Join(lines, "\n"))
}

func (e *RenderError) Unwrap() error { return e.Kind }

// Render merges a site's layers (at most one base, any groups, at most
// one site layer named site) into its configuration, refusing ties
// between groups, clear-text secrets and a result config.Inspect refuses.
// Groups are peers: their order does not matter.
func Render(site string, layers []Layer) (*Rendered, error) {
	if !ValidID(site) {
		return nil, fmt.Errorf("%w: site id %q: use 1 to 64 letters, digits, '.', '_' or '-'", ErrLayer, site)
	}
	var base, own *yaml.Node
	var groups []Layer
	m := newMerger()
	var secrets []Problem
	seenBase := false
	for _, l := range layers {
		switch l.Kind {
		case KindBase:
			if seenBase {
				return nil, fmt.Errorf("%w: more than one base layer", ErrLayer)
			}
			seenBase = true
		case KindGroup:
			if !ValidID(l.Name) {
				return nil, fmt.Errorf("%w: group name %q: use 1 to 64 letters, digits, '.', '_' or '-'", ErrLayer, l.Name)
			}
			if slices.ContainsFunc(groups, func(g Layer) bool { return g.Name == l.Name }) {
				return nil, fmt.Errorf("%w: group %q given twice", ErrLayer, l.Name)
			}
			groups = append(groups, l)
			continue
		case KindSite:
			if l.Name != site {
				return nil, fmt.Errorf("%w: %s given to render site %q", ErrLayer, l, site)
			}
			if own != nil {
				return nil, fmt.Errorf("%w: more than one site layer", ErrLayer)
			}
		default:
			return nil, fmt.Errorf("%w: unknown layer kind %d", ErrLayer, l.Kind)
		}
		root, err := parseLayer(l)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, clearSecrets(l.String(), root)...)
		if l.Kind == KindBase {
			base = m.own(root, l.String())
		} else {
			own = m.own(root, l.String())
			if own == nil {
				own = &yaml.Node{Kind: yaml.MappingNode}
			}
		}
	}
	slices.SortFunc(groups, func(a, b Layer) int { return strings.Compare(a.Name, b.Name) })
	var united *yaml.Node
	for _, g := range groups {
		root, err := parseLayer(g)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, clearSecrets(g.String(), root)...)
		united = m.union(united, m.own(root, g.String()), "")
	}
	if len(secrets) > 0 {
		return nil, &RenderError{Site: site, Kind: ErrClearSecret, Problems: secrets}
	}
	if len(m.ties) > 0 {
		ps := make([]Problem, len(m.ties))
		for i, t := range m.ties {
			ps[i] = Problem{Msg: t}
		}
		return nil, &RenderError{Site: site, Kind: ErrTie, Problems: ps}
	}
	tree, err := m.overlay(nil, base, "")
	if err == nil {
		tree, err = m.overlay(tree, united, "")
	}
	if err == nil {
		tree, err = m.overlay(tree, own, "")
	}
	if err != nil {
		return nil, err
	}
	if tree == nil {
		tree = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	r := &Rendered{Site: site, origins: map[string]string{}}
	canonicalize(tree)
	r.Config, err = encode(tree)
	if err != nil {
		return nil, fmt.Errorf("site %q: encode the rendered configuration: %w", site, err)
	}
	if len(r.Config) > config.MaxFileSize {
		return nil, &RenderError{Site: site, Kind: ErrInvalidConfig, Problems: []Problem{{
			Msg: fmt.Sprintf("the rendered configuration is larger than %d KiB", config.MaxFileSize>>10)}}}
	}
	m.record(r.origins, tree, "")
	if err := r.validate(tree); err != nil {
		return nil, err
	}
	r.Hash = sha256.Sum256(r.Config)
	return r, nil
}

// record fills origins with the key paths of n in config's notation.
func (m *merger) record(origins map[string]string, n *yaml.Node, path string) {
	// The top level has no origin: a key missing there was set by no one.
	if o, ok := m.origin[n]; ok && path != "" {
		origins[path] = o
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			m.record(origins, n.Content[i+1], p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			m.record(origins, c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// canonicalize sorts every block's keys (`name` first, for a reader of
// lists of named items, then byte order) and clears styles and comments,
// so the bytes depend only on the content.
func canonicalize(n *yaml.Node) {
	n.Style, n.HeadComment, n.LineComment, n.FootComment = 0, "", "", ""
	n.Line, n.Column = 0, 0
	if n.Kind == yaml.MappingNode {
		type kv struct{ k, v *yaml.Node }
		pairs := make([]kv, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			pairs = append(pairs, kv{n.Content[i], n.Content[i+1]})
		}
		slices.SortStableFunc(pairs, func(a, b kv) int { return compareKeys(a.k.Value, b.k.Value) })
		for i, p := range pairs {
			n.Content[2*i], n.Content[2*i+1] = p.k, p.v
		}
	}
	for _, c := range n.Content {
		canonicalize(c)
	}
}

func compareKeys(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "name":
		return -1
	case b == "name":
		return 1
	}
	return strings.Compare(a, b)
}

func encode(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// validate runs the configuration package over the rendered bytes, with
// each secret reference replaced by a stand-in of the shape the site will
// give it ({file: …}), offline (nothing on the hub is read: ${NAME} is
// the site's environment). Problems name the layer that set the key.
func (r *Rendered) validate(tree *yaml.Node) error {
	check := copyTree(tree)
	if err := rewriteRefs(check, func(ref Ref) (*yaml.Node, error) { return standIn(ref), nil }); err != nil {
		return &RenderError{Site: r.Site, Kind: ErrInvalidConfig, Problems: []Problem{{Msg: err.Error()}}}
	}
	data, err := encode(check)
	if err != nil {
		return fmt.Errorf("site %q: encode for validation: %w", r.Site, err)
	}
	_, ps := config.Inspect("rendered", data, config.Options{Offline: true})
	if ps.Errors() == 0 {
		return nil
	}
	var out []Problem
	for _, p := range ps {
		if p.Warning {
			continue
		}
		out = append(out, Problem{Key: p.Key, Layer: r.Origin(p.Key), Msg: p.Msg})
	}
	return &RenderError{Site: r.Site, Kind: ErrInvalidConfig, Problems: out}
}

func copyTree(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = nil
	for _, x := range n.Content {
		c.Content = append(c.Content, copyTree(x))
	}
	return &c
}
