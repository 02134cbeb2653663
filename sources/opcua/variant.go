package opcua

import (
	"encoding/base64"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/model"
)

// Reasons for values the model cannot carry. Constant, so that a stream of
// them does not allocate.
const (
	reasonUnsupported = "unsupported OPC UA data type"
	reasonNoValue     = "no value"
)

// toValue maps an OPC UA variant onto the model. ok is false when the
// variant holds a type the model has no representation for (structures in
// ExtensionObjects, nested DataValues and Variants, DiagnosticInfo); the
// caller then emits an invalid value with bad quality.
//
// Mapping, documented in README.md:
//   - Boolean → bool; SByte, Int16, Int32, Int64 → int; Byte, UInt16, UInt32,
//     UInt64 → uint; Float, Double → float;
//   - String, XmlElement → string; ByteString → string, standard base64;
//   - DateTime → string, RFC 3339 with nanoseconds in UTC (an OPC UA
//     DateTime is not a sample timestamp, and a string keeps its meaning
//     in every sink);
//   - Guid, NodeId, ExpandedNodeId → their OPC UA string form; QualifiedName
//     → "ns:name" (Part 6 §5.3.1.14); LocalizedText → its text; StatusCode →
//     its name ("BadNodeIdUnknown" in the library's spelling, BadNodeIDUnknown);
//   - one-dimensional arrays of any of these → array; multi-dimensional
//     arrays → array of arrays (row-major).
func toValue(v *ua.Variant) (model.Value, bool) {
	if v == nil {
		return model.Value{}, true
	}
	return anyToValue(v.Value())
}

// anyToValue maps a decoded variant payload. Scalars are handled without
// allocating except for the string forms of identifiers.
func anyToValue(x any) (model.Value, bool) {
	switch t := x.(type) {
	case nil:
		return model.Value{}, true
	case bool:
		return model.Bool(t), true
	case int8:
		return model.Int(int64(t)), true
	case int16:
		return model.Int(int64(t)), true
	case int32:
		return model.Int(int64(t)), true
	case int64:
		return model.Int(t), true
	case uint8:
		return model.Uint(uint64(t)), true
	case uint16:
		return model.Uint(uint64(t)), true
	case uint32:
		return model.Uint(uint64(t)), true
	case uint64:
		return model.Uint(t), true
	case float32:
		return model.Float32(t), true
	case float64:
		return model.Float(t), true
	case string:
		return model.String(t), true
	case ua.XMLElement:
		return model.String(string(t)), true
	case []byte:
		return model.String(base64.StdEncoding.EncodeToString(t)), true
	case time.Time:
		return model.String(formatTime(t)), true
	case *ua.GUID:
		if t == nil {
			return model.Value{}, true
		}
		return model.String(t.String()), true
	case *ua.NodeID:
		if t == nil {
			return model.Value{}, true
		}
		return model.String(t.String()), true
	case *ua.ExpandedNodeID:
		if t == nil {
			return model.Value{}, true
		}
		return model.String(t.String()), true
	case *ua.QualifiedName:
		if t == nil {
			return model.Value{}, true
		}
		return model.String(strconv.Itoa(int(t.NamespaceIndex)) + ":" + t.Name), true
	case *ua.LocalizedText:
		if t == nil {
			return model.Value{}, true
		}
		return model.String(t.Text), true
	case ua.StatusCode:
		return model.String(statusName(t)), true
	case ua.ByteArray: // Byte[]; a ByteString is []byte above
		out := make([]model.Value, len(t))
		for i, b := range t {
			out[i] = model.Uint(uint64(b))
		}
		return model.Array(out), true
	case []bool:
		return mapSlice(t, model.Bool), true
	case []int8:
		return mapSlice(t, func(e int8) model.Value { return model.Int(int64(e)) }), true
	case []int16:
		return mapSlice(t, func(e int16) model.Value { return model.Int(int64(e)) }), true
	case []int32:
		return mapSlice(t, func(e int32) model.Value { return model.Int(int64(e)) }), true
	case []int64:
		return mapSlice(t, model.Int), true
	case []uint16:
		return mapSlice(t, func(e uint16) model.Value { return model.Uint(uint64(e)) }), true
	case []uint32:
		return mapSlice(t, func(e uint32) model.Value { return model.Uint(uint64(e)) }), true
	case []uint64:
		return mapSlice(t, model.Uint), true
	case []float32:
		return mapSlice(t, model.Float32), true
	case []float64:
		return mapSlice(t, model.Float), true
	case []string:
		return mapSlice(t, model.String), true
	case *ua.ExtensionObject, *ua.DataValue, *ua.Variant, *ua.DiagnosticInfo:
		return model.Value{}, false
	}
	return sliceToValue(x)
}

func mapSlice[E any](in []E, f func(E) model.Value) model.Value {
	out := make([]model.Value, len(in))
	for i, e := range in {
		out[i] = f(e)
	}
	return model.Array(out)
}

// sliceToValue handles the rarer arrays (of identifiers, times, byte
// strings) and multi-dimensional arrays, which the library decodes as
// nested slices.
func sliceToValue(x any) (model.Value, bool) {
	var n int
	var at func(int) any
	switch t := x.(type) {
	case [][]byte:
		n, at = len(t), func(i int) any { return t[i] }
	case []time.Time:
		n, at = len(t), func(i int) any { return t[i] }
	case []*ua.GUID:
		n, at = len(t), func(i int) any { return t[i] }
	case []*ua.NodeID:
		n, at = len(t), func(i int) any { return t[i] }
	case []*ua.ExpandedNodeID:
		n, at = len(t), func(i int) any { return t[i] }
	case []*ua.QualifiedName:
		n, at = len(t), func(i int) any { return t[i] }
	case []*ua.LocalizedText:
		n, at = len(t), func(i int) any { return t[i] }
	case []ua.StatusCode:
		n, at = len(t), func(i int) any { return t[i] }
	case []ua.XMLElement:
		n, at = len(t), func(i int) any { return t[i] }
	default:
		return nestedToValue(x)
	}
	out := make([]model.Value, n)
	for i := range out {
		v, ok := anyToValue(at(i))
		if !ok {
			return model.Value{}, false
		}
		out[i] = v
	}
	return model.Array(out), true
}

// nestedToValue maps a multi-dimensional array, which gopcua decodes as a
// slice of slices of the element type; it uses reflection, since the
// nesting depth is only known at run time.
func nestedToValue(x any) (model.Value, bool) {
	rv := reflectSlice(x)
	if rv == nil {
		return model.Value{}, false
	}
	out := make([]model.Value, len(rv))
	for i, e := range rv {
		v, ok := anyToValue(e)
		if !ok {
			return model.Value{}, false
		}
		out[i] = v
	}
	return model.Array(out), true
}

// formatTime renders an OPC UA DateTime. The zero time (OPC UA's "no
// time", 1601-01-01) is rendered as the empty string.
func formatTime(t time.Time) string {
	if t.IsZero() || t.Year() <= 1601 {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// statusName is the name of a status code without gopcua's "Status"
// prefix, looked up without the info bits (the low 16 bits: limits,
// overflow, historian flags). Unknown codes are written in hex.
func statusName(c ua.StatusCode) string {
	base := c & 0xFFFF0000
	if base == 0 {
		return "Good"
	}
	if d, ok := ua.StatusCodes[base]; ok {
		return strings.TrimPrefix(d.Name, "Status")
	}
	return "0x" + strconv.FormatUint(uint64(c), 16)
}

// qualityOf maps a status code onto the model's quality classes by its
// severity bits (the top two: 00 good, 01 uncertain, 1x bad). Plain Good
// carries no reason; every other code carries its name.
func qualityOf(c ua.StatusCode) model.Quality {
	if c == ua.StatusOK {
		return model.Quality{}
	}
	var code model.QualityCode
	switch c >> 30 {
	case 0:
		code = model.Good
	case 1:
		code = model.Uncertain
	default:
		code = model.Bad
	}
	if code == model.Good && c&0xFFFF0000 == 0 {
		return model.Quality{} // Good with only info bits set
	}
	return model.Quality{Code: code, Reason: statusName(c)}
}

// reflectSlice returns the elements of any slice, or nil for other kinds.
func reflectSlice(x any) []any {
	rv := reflect.ValueOf(x)
	if rv.Kind() != reflect.Slice {
		return nil
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out
}
