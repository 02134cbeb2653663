package simopcua

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/weir-edge/weir/internal/third_party/gopcua/server"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/sim"
)

// NamespaceURI is the simulator's namespace; it gets index 1.
const NamespaceURI = "urn:weir:sim"

// variable is one served value. Its DataValue is replaced, never mutated,
// so a reader may keep the pointer it got.
type variable struct {
	node     *server.Node
	name     string // plant tag name, or "" for the demo variables
	typ      ua.TypeID
	writable bool
	next     func(last any) any // for counters: the value after a refresh
	dv       *ua.DataValue      // guarded by space.mu
	last     any                // the newest plain value, for change detection; publish's own
}

// space is the simulator's address space in namespace 1. It implements
// server.NameSpace itself rather than using the library's NodeNameSpace,
// whose Write replaces a node's value function with a constant: here a
// Write goes to the plant model and a Read always sees the model.
type space struct {
	idx   uint16
	nodes map[string]*server.Node // by NodeID string; immutable after build
	vars  map[string]*variable    // by NodeID string; immutable after build
	order []*variable             // build order, for refresh
	// children are the references of each folder, by NodeID string.
	children map[string][]*ua.ReferenceDescription
	write    func(v *variable, val *ua.Variant) ua.StatusCode

	mu sync.RWMutex
}

var _ server.NameSpace = (*space)(nil)

func (s *space) Name() string    { return NamespaceURI }
func (s *space) ID() uint16      { return s.idx }
func (s *space) SetID(id uint16) { s.idx = id }
func (s *space) AddNode(n *server.Node) *server.Node {
	s.nodes[n.ID().String()] = n
	return n
}
func (s *space) Node(nid *ua.NodeID) *server.Node {
	if nid == nil {
		return nil
	}
	return s.nodes[nid.String()]
}
func (s *space) Objects() *server.Node { return nil }
func (s *space) Root() *server.Node    { return nil }

// Attribute answers Read for namespace 1.
func (s *space) Attribute(nid *ua.NodeID, attr ua.AttributeID) *ua.DataValue {
	n := s.Node(nid)
	if n == nil {
		return badDV(ua.StatusBadNodeIDUnknown)
	}
	switch attr {
	case ua.AttributeIDNodeID:
		return plainDV(ua.MustVariant(nid))
	case ua.AttributeIDNodeClass:
		return plainDV(ua.MustVariant(int32(n.NodeClass())))
	case ua.AttributeIDValue:
		v := s.vars[nid.String()]
		if v == nil {
			return badDV(ua.StatusBadAttributeIDInvalid)
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		return v.dv
	case ua.AttributeIDDataType:
		// Stored as an ExpandedNodeID because the library's Node.DataType
		// expects one; the attribute itself is a NodeId.
		if v := s.vars[nid.String()]; v != nil {
			return plainDV(ua.MustVariant(ua.NewNumericNodeID(0, uint32(v.typ))))
		}
		return badDV(ua.StatusBadAttributeIDInvalid)
	}
	a, err := n.Attribute(attr)
	if err != nil || a.Value == nil {
		return badDV(ua.StatusBadAttributeIDInvalid)
	}
	return a.Value
}

// SetAttribute answers Write: only the Value of writable plant setpoints.
func (s *space) SetAttribute(nid *ua.NodeID, attr ua.AttributeID, dv *ua.DataValue) ua.StatusCode {
	v := s.vars[nid.String()]
	switch {
	case s.Node(nid) == nil:
		return ua.StatusBadNodeIDUnknown
	case attr != ua.AttributeIDValue || v == nil || !v.writable:
		return ua.StatusBadNotWritable
	case dv == nil || dv.Value == nil:
		return ua.StatusBadTypeMismatch
	}
	return s.write(v, dv.Value)
}

// Browse lists a node's forward references, filtered by node class. The
// reference type filter accepts every hierarchical type, which is all this
// namespace has.
func (s *space) Browse(bd *ua.BrowseDescription) *ua.BrowseResult {
	n := s.Node(bd.NodeID)
	if n == nil {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	if bd.BrowseDirection == ua.BrowseDirectionInverse {
		return &ua.BrowseResult{StatusCode: ua.StatusOK, References: []*ua.ReferenceDescription{}}
	}
	refs := []*ua.ReferenceDescription{}
	for _, r := range s.children[n.ID().String()] {
		if bd.NodeClassMask != 0 && bd.NodeClassMask&uint32(r.NodeClass) == 0 {
			continue
		}
		refs = append(refs, r)
	}
	return &ua.BrowseResult{StatusCode: ua.StatusOK, References: refs}
}

func plainDV(v *ua.Variant) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v}
}

func badDV(c ua.StatusCode) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueStatusCode | ua.DataValueServerTimestamp, Status: c, ServerTimestamp: time.Now()}
}

// valueDV stamps a value with its source and server time.
func valueDV(v any, status ua.StatusCode, at time.Time) *ua.DataValue {
	dv := &ua.DataValue{
		EncodingMask:    ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		SourceTimestamp: at, ServerTimestamp: at,
	}
	if v != nil {
		dv.EncodingMask |= ua.DataValueValue
		dv.Value = ua.MustVariant(v)
	}
	if status != ua.StatusOK {
		dv.EncodingMask |= ua.DataValueStatusCode
		dv.Status = status
	}
	return dv
}

// opcType picks the OPC UA type of a plant tag from its Modbus encoding:
// unscaled integers keep their width, float32 stays Float, and scaled
// values are Double.
func opcType(spec sim.TagSpec, v any) ua.TypeID {
	switch v.(type) {
	case bool:
		return ua.TypeIDBoolean
	case string:
		return ua.TypeIDString
	}
	if spec.Scale != nil || spec.Offset != nil {
		return ua.TypeIDDouble
	}
	switch spec.Type {
	case sim.TypeInt16:
		return ua.TypeIDInt16
	case sim.TypeUint16:
		return ua.TypeIDUint16
	case sim.TypeInt32:
		return ua.TypeIDInt32
	case sim.TypeUint32:
		return ua.TypeIDUint32
	case sim.TypeInt64:
		return ua.TypeIDInt64
	case sim.TypeUint64:
		return ua.TypeIDUint64
	case sim.TypeFloat32:
		return ua.TypeIDFloat
	}
	return ua.TypeIDDouble
}

// convert turns a plant value (bool, float64, uint64, string) into the Go
// type of the OPC UA type typ.
func convert(v any, typ ua.TypeID) any {
	var f float64
	switch t := v.(type) {
	case float64:
		f = t
	case uint64:
		f = float64(t)
		if typ == ua.TypeIDUint64 {
			return t
		}
	default:
		return v
	}
	r := math.Round(f)
	switch typ {
	case ua.TypeIDInt16:
		return int16(r)
	case ua.TypeIDUint16:
		return uint16(r)
	case ua.TypeIDInt32:
		return int32(r)
	case ua.TypeIDUint32:
		return uint32(r)
	case ua.TypeIDInt64:
		return int64(r)
	case ua.TypeIDUint64:
		return uint64(r)
	case ua.TypeIDFloat:
		return float32(f)
	}
	return f
}

// typeNodeID is the DataType node of a built-in type.
func typeNodeID(t ua.TypeID) *ua.NodeID { return ua.NewNumericNodeID(0, uint32(t)) }

func stringID(ns uint16, s string) *ua.NodeID { return ua.NewStringNodeID(ns, s) }

func folderRef(nid *ua.NodeID, name string) *ua.ReferenceDescription {
	return &ua.ReferenceDescription{
		ReferenceTypeID: ua.NewNumericNodeID(0, id.Organizes), IsForward: true,
		NodeID:      ua.NewExpandedNodeID(nid, "", 0),
		BrowseName:  &ua.QualifiedName{NamespaceIndex: nid.Namespace(), Name: name},
		DisplayName: ua.NewLocalizedText(name), NodeClass: ua.NodeClassObject,
		TypeDefinition: ua.NewNumericExpandedNodeID(0, id.FolderType),
	}
}

func varRef(nid *ua.NodeID, name string) *ua.ReferenceDescription {
	return &ua.ReferenceDescription{
		ReferenceTypeID: ua.NewNumericNodeID(0, id.HasComponent), IsForward: true,
		NodeID:      ua.NewExpandedNodeID(nid, "", 0),
		BrowseName:  &ua.QualifiedName{NamespaceIndex: nid.Namespace(), Name: name},
		DisplayName: ua.NewLocalizedText(name), NodeClass: ua.NodeClassVariable,
		TypeDefinition: ua.NewNumericExpandedNodeID(0, id.BaseDataVariableType),
	}
}

func (s *space) folder(nid *ua.NodeID, name string) *server.Node {
	n := server.NewNode(nid, server.Attributes{
		ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassObject)),
		ua.AttributeIDBrowseName:  server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: nid.Namespace(), Name: name}),
		ua.AttributeIDDisplayName: server.DataValueFromValue(ua.NewLocalizedText(name)),
		ua.AttributeIDDataType:    server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.FolderType)),
	}, nil, nil)
	return s.AddNode(n)
}

// addVar adds a variable under parent with initial value val.
func (s *space) addVar(parent *ua.NodeID, nid *ua.NodeID, name string, typ ua.TypeID, writable bool, desc string, val any, status ua.StatusCode, at time.Time) *variable {
	access := byte(ua.AccessLevelTypeCurrentRead)
	if writable {
		access |= byte(ua.AccessLevelTypeCurrentWrite)
	}
	rank := int32(-1)
	if isArray(val) {
		rank = 1
	}
	n := server.NewNode(nid, server.Attributes{
		ua.AttributeIDNodeClass:       server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName:      server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: nid.Namespace(), Name: name}),
		ua.AttributeIDDisplayName:     server.DataValueFromValue(ua.NewLocalizedText(name)),
		ua.AttributeIDDescription:     server.DataValueFromValue(ua.NewLocalizedText(desc)),
		ua.AttributeIDDataType:        server.DataValueFromValue(ua.NewExpandedNodeID(typeNodeID(typ), "", 0)),
		ua.AttributeIDValueRank:       server.DataValueFromValue(rank),
		ua.AttributeIDAccessLevel:     server.DataValueFromValue(access),
		ua.AttributeIDUserAccessLevel: server.DataValueFromValue(access),
	}, nil, nil)
	s.AddNode(n)
	v := &variable{node: n, typ: typ, writable: writable, dv: valueDV(val, status, at), last: val}
	s.vars[nid.String()] = v
	s.order = append(s.order, v)
	s.children[parent.String()] = append(s.children[parent.String()], varRef(nid, name))
	return v
}

func isArray(v any) bool {
	switch v.(type) {
	case []float64, []int32, []string, []bool:
		return true
	}
	return false
}

// demoTypes are static variables of every built-in type the source maps,
// plus values with uncertain and bad status, for clients to test against.
func demoTypes(at time.Time) []struct {
	name string
	typ  ua.TypeID
	val  any
	st   ua.StatusCode
} {
	g := ua.NewGUID("72962B91-FA75-4AE6-8D28-B404DC7DAF63")
	return []struct {
		name string
		typ  ua.TypeID
		val  any
		st   ua.StatusCode
	}{
		{"boolean", ua.TypeIDBoolean, true, ua.StatusOK},
		{"sbyte", ua.TypeIDSByte, int8(-8), ua.StatusOK},
		{"byte", ua.TypeIDByte, uint8(200), ua.StatusOK},
		{"int16", ua.TypeIDInt16, int16(-1600), ua.StatusOK},
		{"uint16", ua.TypeIDUint16, uint16(1600), ua.StatusOK},
		{"int32", ua.TypeIDInt32, int32(-320000), ua.StatusOK},
		{"uint32", ua.TypeIDUint32, uint32(3200000000), ua.StatusOK},
		{"int64", ua.TypeIDInt64, int64(-6400000000), ua.StatusOK},
		{"uint64", ua.TypeIDUint64, uint64(18000000000000000000), ua.StatusOK},
		{"float", ua.TypeIDFloat, float32(1.5), ua.StatusOK},
		{"double", ua.TypeIDDouble, 2.25, ua.StatusOK},
		{"string", ua.TypeIDString, "Grüße", ua.StatusOK},
		{"datetime", ua.TypeIDDateTime, time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.UTC), ua.StatusOK},
		{"bytestring", ua.TypeIDByteString, []byte{0xde, 0xad, 0xbe, 0xef}, ua.StatusOK},
		{"guid", ua.TypeIDGUID, g, ua.StatusOK},
		{"nodeid", ua.TypeIDNodeID, ua.NewStringNodeID(1, "filler"), ua.StatusOK},
		{"qualifiedname", ua.TypeIDQualifiedName, &ua.QualifiedName{NamespaceIndex: 1, Name: "filler"}, ua.StatusOK},
		{"localizedtext", ua.TypeIDLocalizedText, ua.NewLocalizedText("Abfüllung"), ua.StatusOK},
		{"statuscode", ua.TypeIDStatusCode, ua.StatusBadSensorFailure, ua.StatusOK},
		{"double_array", ua.TypeIDDouble, []float64{1.5, -2.5, 3}, ua.StatusOK},
		{"int32_array", ua.TypeIDInt32, []int32{1, -2, 3}, ua.StatusOK},
		{"string_array", ua.TypeIDString, []string{"a", "b"}, ua.StatusOK},
		{"bool_array", ua.TypeIDBoolean, []bool{true, false}, ua.StatusOK},
		{"uncertain", ua.TypeIDDouble, 42.0, ua.StatusUncertainLastUsableValue},
		{"bad", ua.TypeIDDouble, nil, ua.StatusBadSensorFailure},
	}
}

// build lays out namespace 1: folders filler (the plant), types (demo
// values, a counter and a ramp) and, when asked for, bench. It returns the
// folders, which the caller links under the Objects folder.
func (s *space) build(plant *sim.Plant, benchNodes int, at time.Time) ([]*server.Node, error) {
	ns := s.idx
	root := []struct {
		id   *ua.NodeID
		name string
	}{{stringID(ns, "filler"), "filler"}, {stringID(ns, "types"), "types"}}
	if benchNodes > 0 {
		root = append(root, struct {
			id   *ua.NodeID
			name string
		}{stringID(ns, "bench"), "bench"})
	}
	var folders []*server.Node
	for _, f := range root {
		folders = append(folders, s.folder(f.id, f.name))
	}
	values := plant.Values()
	for _, spec := range plant.Tags() {
		val, ok := values[spec.Name]
		if !ok {
			return nil, fmt.Errorf("plant value %s missing", spec.Name)
		}
		typ := opcType(spec, val)
		desc := spec.Description
		if spec.Unit != "" {
			desc += " [" + spec.Unit + "]"
		}
		v := s.addVar(root[0].id, stringID(ns, "filler."+spec.Name), spec.Name, typ, spec.Writable, desc, convert(val, typ), ua.StatusOK, at)
		v.name = spec.Name
	}
	for _, d := range demoTypes(at) {
		s.addVar(root[1].id, stringID(ns, "types."+d.name), d.name, d.typ, false, "demo value of type "+d.typ.String(), d.val, d.st, at)
	}
	s.addVar(root[1].id, stringID(ns, "types.counter"), "counter", ua.TypeIDUint32, false, "increments on every refresh", uint32(0), ua.StatusOK, at).
		next = func(last any) any { return last.(uint32) + 1 }
	s.addVar(root[1].id, stringID(ns, "types.ramp"), "ramp", ua.TypeIDDouble, false, "grows by 1 on every refresh", 0.0, ua.StatusOK, at).
		next = func(last any) any { return last.(float64) + 1 }
	for i := range benchNodes {
		name := fmt.Sprintf("%05d", i)
		s.addVar(root[2].id, stringID(ns, "bench."+name), name, ua.TypeIDDouble, false, "load-test value: grows by 1 on every refresh", 0.0, ua.StatusOK, at).
			next = func(last any) any { return last.(float64) + 1 }
	}
	return folders, nil
}
