package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gopcua/opcua/id"
	gopcua "github.com/weir-edge/weir/internal/third_party/gopcua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/logcapture"
	opcuasrc "github.com/weir-edge/weir/sources/opcua"
)

// Browse defaults: deep enough for a plant modelled as
// Objects/Plant/Line/Machine/Variable, with one level to spare (Site or
// Area above the line), and without the Server object, whose ~200
// diagnostic nodes bury the user's own.
const (
	browseDefaultDepth = 5
	serverObjectID     = "i=2253"
)

// defineBrowse walks an OPC UA server's address space and prints the tree
// with node ids, data types and access levels, or, with -snippet, the
// items of an opcua source configuration for the variables found.
func defineBrowse(fs *flag.FlagSet) body {
	depth := fs.Int("depth", browseDefaultDepth, "levels below the root to walk")
	root := fs.String("root", "i=85", "node id to start at (default the Objects folder)")
	withServer := fs.Bool("server", false, "include the Server object (ns=0;i=2253: capabilities and diagnostics)")
	policy := fs.String("security", "None", "security policy: None, Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss")
	mode := fs.String("mode", "", "security mode: Sign or SignAndEncrypt (default SignAndEncrypt with a policy, None without)")
	user := fs.String("user", "", "user name (password from -password-env)")
	passEnv := fs.String("password-env", "OPCUA_PASSWORD", "environment variable holding the password")
	pki := fs.String("pki", "", "certificate store (own/, trusted/, rejected/) for secure connections and passwords")
	trustFirst := fs.Bool("auto-trust-first", false, "trust the server certificate when the store trusts none yet")
	snippet := fs.Bool("snippet", false, "print a YAML config snippet (subscription items) for the variables found")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) != 1 || *depth < 0 {
			fmt.Fprintln(stderr, "Usage: weir browse [flags] opc.tcp://host:port   (weir browse -h for the flags)")
			return errUsage
		}
		endpoint := pos[0]
		if err := opcuasrc.CheckEndpoint(endpoint); err != nil {
			return fmt.Errorf("endpoint %s", err)
		}
		rootID, err := ua.ParseNodeID(*root)
		if err != nil {
			return fmt.Errorf("-root: %w", err)
		}
		cfg := opcuasrc.Config{Endpoint: endpoint, SecurityPolicy: *policy, SecurityMode: *mode, PKIDir: *pki,
			AutoTrustFirst: *trustFirst, RequestTimeout: *timeout}
		if *user != "" {
			cfg.Auth = opcuasrc.Auth{Type: "username", Username: *user, Password: conf.Secret{Env: *passEnv}}
		}
		log, err := newLogger(stderr, "warn", "text")
		if err != nil {
			return err
		}
		defer logcapture.Install(log)() // gopcua's log-package warnings as slog records
		cctx, cancel := context.WithTimeout(ctx, 2**timeout)
		c, err := opcuasrc.Dial(cctx, cfg, log.With("component", "browse"))
		cancel()
		if err != nil {
			return err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c.Close(cctx)
		}()
		rootName := "root"
		if dn, err := c.Node(rootID).DisplayName(ctx); err == nil && dn != nil {
			rootName = dn.Text
		}
		w := newWalker(c, *depth, *withServer, c.Namespaces())
		return w.run(ctx, rootID, rootName, *snippet, stdout)
	}
}

// uaBrowser is what the walker needs of an OPC UA client.
type uaBrowser interface {
	Browse(ctx context.Context, req *ua.BrowseRequest) (*ua.BrowseResponse, error)
	BrowseNext(ctx context.Context, req *ua.BrowseNextRequest) (*ua.BrowseNextResponse, error)
	Read(ctx context.Context, req *ua.ReadRequest) (*ua.ReadResponse, error)
}

var _ uaBrowser = (*gopcua.Client)(nil)

func newWalker(c uaBrowser, depth int, withServer bool, ns []string) *walker {
	w := &walker{c: c, maxDepth: depth, seen: map[string]bool{}, ns: ns}
	if !withServer {
		w.seen[serverObjectID] = true // as if walked: skipped
	}
	return w
}

// run walks from root and prints the tree, or the snippet.
func (w *walker) run(ctx context.Context, rootID *ua.NodeID, rootName string, snippet bool, stdout io.Writer) error {
	if !snippet {
		fmt.Fprintf(stdout, "%s (%s)\n", rootName, rootID)
	}
	if err := w.walk(ctx, rootID, nil, 1); err != nil {
		return err
	}
	if snippet {
		return writeSnippet(stdout, w.vars)
	}
	for _, l := range w.lines {
		fmt.Fprintln(stdout, l)
	}
	fmt.Fprintf(stdout, "%d nodes, %d variables", len(w.lines), len(w.vars))
	if w.skippedServer {
		fmt.Fprint(stdout, "; the Server object (i=2253) skipped: -server includes it")
	}
	if w.cut {
		fmt.Fprintf(stdout, "; objects at depth %d have more below: raise -depth", w.maxDepth)
	}
	fmt.Fprintln(stdout)
	return nil
}

type browsedVar struct {
	path   []string
	nodeID string
}

type walker struct {
	c        uaBrowser
	maxDepth int
	seen     map[string]bool
	ns       []string
	lines    []string
	vars     []browsedVar
	// skippedServer: the Server object was met and left out; cut: a
	// node at the last level has children that were not walked.
	skippedServer, cut bool
}

// walk lists the hierarchical children of n, then recurses, depth first,
// visiting every node once.
func (w *walker) walk(ctx context.Context, n *ua.NodeID, path []string, depth int) error {
	if depth > w.maxDepth {
		return nil
	}
	w.seen[n.String()] = true
	refs, err := w.browse(ctx, n)
	if err != nil {
		return fmt.Errorf("browse %s: %w", n, err)
	}
	var vars []*ua.ReferenceDescription
	for _, r := range refs {
		if r.NodeClass == ua.NodeClassVariable {
			vars = append(vars, r)
		}
	}
	info, err := w.varInfo(ctx, vars)
	if err != nil {
		return err
	}
	indent := strings.Repeat("  ", depth)
	for _, r := range refs {
		if r.NodeID == nil || r.NodeID.NodeID == nil {
			continue
		}
		if id := r.NodeID.NodeID.String(); w.seen[id] {
			w.skippedServer = w.skippedServer || id == serverObjectID
			continue
		}
		name := r.BrowseName.Name
		line := fmt.Sprintf("%s%s (%s) %s", indent, name, r.NodeID.NodeID, strings.TrimPrefix(r.NodeClass.String(), "NodeClass"))
		p := append(append([]string(nil), path...), name)
		if r.NodeClass == ua.NodeClassVariable {
			line += " " + info[r.NodeID.NodeID.String()]
			w.vars = append(w.vars, browsedVar{path: p, nodeID: w.portableID(r.NodeID.NodeID)})
		}
		w.lines = append(w.lines, line)
		w.cut = w.cut || depth == w.maxDepth && r.NodeClass == ua.NodeClassObject
		if err := w.walk(ctx, r.NodeID.NodeID, p, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// browse returns every forward hierarchical reference of n, following
// continuation points.
func (w *walker) browse(ctx context.Context, n *ua.NodeID) ([]*ua.ReferenceDescription, error) {
	res, err := w.c.Browse(ctx, &ua.BrowseRequest{
		NodesToBrowse: []*ua.BrowseDescription{{
			NodeID: n, BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true,
			NodeClassMask: uint32(ua.NodeClassObject | ua.NodeClassVariable), ResultMask: uint32(ua.BrowseResultMaskAll),
		}},
	})
	if err != nil {
		return nil, err
	}
	if len(res.Results) != 1 {
		return nil, errors.New("no browse result")
	}
	r := res.Results[0]
	if r.StatusCode != ua.StatusOK {
		return nil, r.StatusCode
	}
	refs := r.References
	for cp := r.ContinuationPoint; len(cp) > 0; {
		next, err := w.c.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
		if err != nil || len(next.Results) != 1 {
			return refs, err
		}
		refs = append(refs, next.Results[0].References...)
		cp = next.Results[0].ContinuationPoint
	}
	return refs, nil
}

// varInfo reads data type, value rank and access level of variables and
// formats them as "Double[] rw".
func (w *walker) varInfo(ctx context.Context, vars []*ua.ReferenceDescription) (map[string]string, error) {
	out := map[string]string{}
	if len(vars) == 0 {
		return out, nil
	}
	attrs := []ua.AttributeID{ua.AttributeIDDataType, ua.AttributeIDValueRank, ua.AttributeIDAccessLevel}
	var req ua.ReadRequest
	for _, v := range vars {
		for _, a := range attrs {
			req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: v.NodeID.NodeID, AttributeID: a})
		}
	}
	res, err := w.c.Read(ctx, &req)
	if err != nil {
		return nil, fmt.Errorf("read attributes: %w", err)
	}
	if len(res.Results) != len(req.NodesToRead) {
		return nil, errors.New("read attributes: short response")
	}
	for i, v := range vars {
		dt, rank, acc := res.Results[3*i], res.Results[3*i+1], res.Results[3*i+2]
		s := typeName(dt)
		if rank != nil && rank.Value != nil {
			if r, ok := rank.Value.Value().(int32); ok && r >= 0 {
				s += "[]"
			}
		}
		out[v.NodeID.NodeID.String()] = s + " " + accessName(acc)
	}
	return out, nil
}

func typeName(dv *ua.DataValue) string {
	if dv == nil || dv.Value == nil {
		return "?"
	}
	var n *ua.NodeID
	switch t := dv.Value.Value().(type) {
	case *ua.NodeID:
		n = t
	case *ua.ExpandedNodeID:
		n = t.NodeID
	}
	if n == nil {
		return "?"
	}
	if n.Namespace() == 0 && n.IntID() > 0 && int(n.IntID()) < len(builtinTypes) {
		return builtinTypes[n.IntID()]
	}
	return n.String()
}

// builtinTypes are the OPC UA names of the built-in data types, by id.
var builtinTypes = [...]string{"", "Boolean", "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
	"Float", "Double", "String", "DateTime", "Guid", "ByteString", "XmlElement", "NodeId", "ExpandedNodeId",
	"StatusCode", "QualifiedName", "LocalizedText", "Structure", "DataValue", "BaseDataType", "DiagnosticInfo",
	"Number", "Integer", "UInteger", "Enumeration"}

func accessName(dv *ua.DataValue) string {
	if dv == nil || dv.Value == nil {
		return "access=?"
	}
	var a byte
	switch t := dv.Value.Value().(type) {
	case uint8:
		a = t
	case uint32:
		a = byte(t)
	default:
		return "access=?"
	}
	s := ""
	if a&byte(ua.AccessLevelTypeCurrentRead) != 0 {
		s += "r"
	}
	if a&byte(ua.AccessLevelTypeCurrentWrite) != 0 {
		s += "w"
	}
	if a&byte(ua.AccessLevelTypeHistoryRead) != 0 {
		s += "h"
	}
	if s == "" {
		s = "none"
	}
	return "access=" + s
}

// portableID writes a node id with its namespace URI (nsu=…) rather than
// the index, which a server may renumber when it restarts.
func (w *walker) portableID(n *ua.NodeID) string {
	s := n.String()
	ns := int(n.Namespace())
	if ns == 0 || ns >= len(w.ns) {
		return s
	}
	_, rest, _ := strings.Cut(s, ";")
	return "nsu=" + w.ns[ns] + ";" + rest
}

// writeSnippet prints the variables as one subscription of an opcua
// source; names are the browse path below the root, made path-safe.
func writeSnippet(out io.Writer, vars []browsedVar) error {
	type item struct {
		Name   string `yaml:"name"`
		NodeID string `yaml:"node_id"`
	}
	type sub struct {
		PublishingInterval string `yaml:"publishing_interval"`
		Items              []item `yaml:"items"`
	}
	doc := struct {
		Subscriptions []sub `yaml:"subscriptions"`
	}{Subscriptions: []sub{{PublishingInterval: "1s"}}}
	used := map[string]int{}
	for _, v := range vars {
		parts := make([]string, len(v.path))
		for i, p := range v.path {
			parts[i] = pathSafe(p)
		}
		name := strings.Join(parts, "/")
		if used[name]++; used[name] > 1 {
			name = fmt.Sprintf("%s_%d", name, used[name])
		}
		doc.Subscriptions[0].Items = append(doc.Subscriptions[0].Items, item{Name: name, NodeID: v.nodeID})
	}
	fmt.Fprintln(out, "# opcua source items found by weir browse; paste under the source's opcua: block")
	enc := yaml.NewEncoder(out)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}

// pathSafe makes a browse name usable as one tag path level.
func pathSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '+' || r == '#' || r < 0x20 || r == 0x7f:
			return '_'
		}
		return r
	}, strings.TrimSpace(s))
	s = strings.TrimLeft(s, "$")
	if s == "" {
		return "_"
	}
	return s
}
