package opcua

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/weir-edge/weir/internal/third_party/gopcua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/writegate"
)

// Source writes node values for the write gate (package writegate), the
// only caller: it checks policy, rate and age and records every attempt.
var _ writegate.Writer = (*Source)(nil)

// ErrNotConnected is returned by WriteTag while no session is up: a write
// is sent only over a live session and is never queued for later.
var ErrNotConnected = errors.New("no session to the server")

// WriteTag writes v to the Value attribute of the node behind path and
// confirms it by reading it back.
//
// OPC UA servers take a Write only in the variable's exact data type, so
// the value is converted to the type of the node's current value (or, if
// it has none, its DataType attribute): a number must fit the integer type
// (a float must be whole), a Float must be within float32's range; bool
// and string only go to Boolean and String. Arrays and other types are
// refused before anything is sent.
//
// Sequence on the running session: Read (old value and type), Write,
// Read again; a status other than Good or a read-back that differs from
// what was written is an error. Nothing is retried. The session's client
// is safe for concurrent use, so writes run alongside the subscriptions
// and polls.
func (s *Source) WriteTag(ctx context.Context, path string, v model.Value) (model.Value, error) {
	var it *item
	for _, x := range s.items {
		if x.path == path {
			it = x
			break
		}
	}
	if it == nil {
		return model.Value{}, fmt.Errorf("opcua: write %s: unknown tag", path)
	}
	old, err := s.write(ctx, it, v)
	if err != nil {
		return old, fmt.Errorf("opcua: write %s (%s): %w", path, it.nodeSpec, err)
	}
	return old, nil
}

func (s *Source) write(ctx context.Context, it *item, v model.Value) (model.Value, error) {
	c := s.live.Load()
	if c == nil {
		return model.Value{}, fmt.Errorf("%w; nothing was sent", ErrNotConnected)
	}
	e, err := ua.ParseExpandedNodeID(it.nodeSpec, c.Namespaces())
	if err != nil {
		return model.Value{}, fmt.Errorf("node id: %w; nothing was sent", err)
	}
	node := e.NodeID

	resp0, err := c.Read(ctx, &ua.ReadRequest{
		NodesToRead: []*ua.ReadValueID{
			{NodeID: node, AttributeID: ua.AttributeIDValue},
			{NodeID: node, AttributeID: ua.AttributeIDUserAccessLevel},
		},
		TimestampsToReturn: ua.TimestampsToReturnNeither,
	})
	switch {
	case err != nil:
		return model.Value{}, fmt.Errorf("read before write: %w", err)
	case len(resp0.Results) != 2:
		return model.Value{}, fmt.Errorf("read before write: %d results for 2 attributes", len(resp0.Results))
	case qualityOf(resp0.Results[0].Status).Code == model.Bad:
		return model.Value{}, fmt.Errorf("read before write: %s; nothing was sent", statusName(resp0.Results[0].Status))
	}
	cur := resp0.Results[0].Value
	old, _ := toValue(cur)
	// A server that does not report the access level leaves the verdict
	// to the Write.
	if al := resp0.Results[1]; al.Status == ua.StatusOK && al.Value != nil {
		if b, ok := al.Value.Value().(uint8); ok && b&uint8(ua.AccessLevelTypeCurrentWrite) == 0 {
			return old, errors.New("read-only (its UserAccessLevel has no CurrentWrite); nothing was sent")
		}
	}
	typ := ua.TypeIDNull
	if cur != nil {
		if cur.ArrayLength() > 0 || cur.ArrayDimensions() != nil {
			return old, errors.New("array nodes cannot be written; nothing was sent")
		}
		typ = cur.Type()
	}
	if typ == ua.TypeIDNull {
		if typ, err = readDataType(ctx, c, node); err != nil {
			return old, err
		}
	}
	x, err := toNative(v, typ)
	if err != nil {
		return old, fmt.Errorf("%w; nothing was sent", err)
	}
	variant, err := ua.NewVariant(x)
	if err != nil {
		return old, fmt.Errorf("%w; nothing was sent", err)
	}

	resp, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: node, AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: variant},
	}}})
	switch {
	case err != nil:
		return old, fmt.Errorf("write (outcome unknown, read the tag to find out): %w", err)
	case len(resp.Results) != 1:
		return old, fmt.Errorf("write: %d results for 1 node", len(resp.Results))
	case resp.Results[0] != ua.StatusOK:
		return old, fmt.Errorf("write refused: %s", statusName(resp.Results[0]))
	}

	back, err := readValue(ctx, c, node)
	if err != nil {
		return old, fmt.Errorf("written, but the read-back failed: %w", err)
	}
	want, _ := anyToValue(x)
	got, _ := toValue(back)
	if !got.Equal(want) {
		return old, fmt.Errorf("read-back mismatch: wrote %s, server holds %s", want, got)
	}
	return old, nil
}

// readValue reads a node's Value attribute; a bad status is an error.
func readValue(ctx context.Context, c *opcua.Client, node *ua.NodeID) (*ua.Variant, error) {
	dv, err := readAttr(ctx, c, node, ua.AttributeIDValue)
	if err != nil {
		return nil, err
	}
	return dv.Value, nil
}

func readAttr(ctx context.Context, c *opcua.Client, node *ua.NodeID, attr ua.AttributeID) (*ua.DataValue, error) {
	resp, err := c.Read(ctx, &ua.ReadRequest{
		NodesToRead:        []*ua.ReadValueID{{NodeID: node, AttributeID: attr}},
		TimestampsToReturn: ua.TimestampsToReturnNeither,
	})
	switch {
	case err != nil:
		return nil, err
	case len(resp.Results) != 1:
		return nil, fmt.Errorf("read: %d results for 1 node", len(resp.Results))
	case qualityOf(resp.Results[0].Status).Code == model.Bad:
		return nil, fmt.Errorf("read: %s", statusName(resp.Results[0].Status))
	}
	return resp.Results[0], nil
}

// readDataType maps a node's DataType attribute to a built-in type.
func readDataType(ctx context.Context, c *opcua.Client, node *ua.NodeID) (ua.TypeID, error) {
	dv, err := readAttr(ctx, c, node, ua.AttributeIDDataType)
	if err != nil {
		return 0, fmt.Errorf("read data type: %w", err)
	}
	id, ok := dv.Value.Value().(*ua.NodeID)
	if !ok || id == nil || id.Namespace() != 0 || id.IntID() < 1 || id.IntID() > 25 {
		return 0, fmt.Errorf("data type %v is not a built-in type; nothing was sent", dv.Value.Value())
	}
	return ua.TypeID(id.IntID()), nil
}

// toNative converts a model value to the Go type gopcua encodes as typ.
func toNative(v model.Value, typ ua.TypeID) (any, error) {
	k := v.Kind()
	switch typ {
	case ua.TypeIDBoolean:
		if k != model.KindBool {
			return nil, fmt.Errorf("Boolean node needs a bool, not %s", k)
		}
		return v.AsBool(), nil
	case ua.TypeIDString:
		if k != model.KindString {
			return nil, fmt.Errorf("String node needs a string, not %s", k)
		}
		return v.AsString(), nil
	case ua.TypeIDFloat, ua.TypeIDDouble:
		f, ok := v.Float64()
		if !ok || k == model.KindBool || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s node needs a finite number, not %s", typeName(typ), v)
		}
		if typ == ua.TypeIDDouble {
			return f, nil
		}
		if math.Abs(f) > math.MaxFloat32 {
			return nil, fmt.Errorf("%s is out of range for Float", v)
		}
		return float32(f), nil
	}
	signed, smin, smax, umax, ok := intRange(typ)
	if !ok {
		return nil, fmt.Errorf("writing %s nodes is not supported", typeName(typ))
	}
	if k == model.KindFloat {
		// A whole float becomes the integer it names.
		f := v.AsFloat()
		switch {
		case f != math.Trunc(f) || math.IsInf(f, 0):
			return nil, fmt.Errorf("%s is not an integer, as %s needs", v, typeName(typ))
		case f >= -(1<<63) && f < 1<<63:
			v, k = model.Int(int64(f)), model.KindInt
		case f >= 0 && f < 1<<64:
			v, k = model.Uint(uint64(f)), model.KindUint
		default:
			return nil, fmt.Errorf("%s is out of range for %s", v, typeName(typ))
		}
	}
	switch {
	case k == model.KindInt && signed && v.AsInt() >= smin && v.AsInt() <= smax:
		return intAs(typ, v.AsInt(), 0), nil
	case k == model.KindInt && !signed && v.AsInt() >= 0 && uint64(v.AsInt()) <= umax:
		return intAs(typ, 0, uint64(v.AsInt())), nil
	case k == model.KindUint && signed && v.AsUint() <= uint64(smax):
		return intAs(typ, int64(v.AsUint()), 0), nil
	case k == model.KindUint && !signed && v.AsUint() <= umax:
		return intAs(typ, 0, v.AsUint()), nil
	case k == model.KindInt || k == model.KindUint:
		return nil, fmt.Errorf("%s is out of range for %s", v, typeName(typ))
	}
	return nil, fmt.Errorf("%s node needs an integer, not %s", typeName(typ), k)
}

// typeName is the built-in type's name in the library's spelling
// ("Uint16" for UInt16).
func typeName(typ ua.TypeID) string { return strings.TrimPrefix(typ.String(), "TypeID") }

// intRange is the value range of an integer type.
func intRange(typ ua.TypeID) (signed bool, smin, smax int64, umax uint64, ok bool) {
	switch typ {
	case ua.TypeIDSByte:
		return true, math.MinInt8, math.MaxInt8, 0, true
	case ua.TypeIDInt16:
		return true, math.MinInt16, math.MaxInt16, 0, true
	case ua.TypeIDInt32:
		return true, math.MinInt32, math.MaxInt32, 0, true
	case ua.TypeIDInt64:
		return true, math.MinInt64, math.MaxInt64, 0, true
	case ua.TypeIDByte:
		return false, 0, 0, math.MaxUint8, true
	case ua.TypeIDUint16:
		return false, 0, 0, math.MaxUint16, true
	case ua.TypeIDUint32:
		return false, 0, 0, math.MaxUint32, true
	case ua.TypeIDUint64:
		return false, 0, 0, math.MaxUint64, true
	}
	return false, 0, 0, 0, false
}

// intAs builds the Go integer of typ from i (signed types) or u (unsigned),
// both already range-checked.
func intAs(typ ua.TypeID, i int64, u uint64) any {
	switch typ {
	case ua.TypeIDSByte:
		return int8(i)
	case ua.TypeIDByte:
		return uint8(u)
	case ua.TypeIDInt16:
		return int16(i)
	case ua.TypeIDUint16:
		return uint16(u)
	case ua.TypeIDInt32:
		return int32(i)
	case ua.TypeIDUint32:
		return uint32(u)
	case ua.TypeIDInt64:
		return i
	}
	return u
}
