package sparkplugb

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/model"
)

// maxArrayElems bounds the elements decoded from one array metric, so that a
// hostile payload cannot make ValueOf allocate far more than its own size
// (BooleanArray's count field could otherwise claim 4 billion elements).
const maxArrayElems = 1 << 20

// ValueOf converts m's value to a model.Value using m's own datatype. A
// metric with is_null set (or no value field at all) gives the invalid
// Value and no error. When the datatype is absent (DATA messages should
// omit it) the value is read by the protobuf field that is set: int_value
// and long_value as Uint, float_value and double_value as Float, bytes as an
// array of bytes. Use ValueAs with the datatype from the birth instead when
// it is known.
func ValueOf(m *Metric) (model.Value, error) {
	return ValueAs(m, DataType(m.GetDatatype()))
}

// ValueAs converts m's value as if its datatype were dt (typically the
// datatype recorded from the BIRTH for m's alias or name).
func ValueAs(m *Metric, dt DataType) (model.Value, error) {
	if m.GetIsNull() || m.GetValue() == nil {
		return model.Value{}, nil
	}
	if dt == DataType_Unknown {
		return valueByField(m)
	}
	switch dt {
	case DataType_Int8, DataType_Int16, DataType_Int32, DataType_Int64, DataType_DateTime,
		DataType_UInt8, DataType_UInt16, DataType_UInt32, DataType_UInt64:
		u, ok := intField(m)
		if !ok {
			return model.Value{}, mismatch(m, dt)
		}
		return intAs(u, dt), nil
	case DataType_Float, DataType_Double:
		switch x := m.GetValue().(type) {
		case *Payload_Metric_FloatValue:
			return model.Float32(x.FloatValue), nil
		case *Payload_Metric_DoubleValue:
			return model.Float(x.DoubleValue), nil
		}
	case DataType_Boolean:
		if x, ok := m.GetValue().(*Payload_Metric_BooleanValue); ok {
			return model.Bool(x.BooleanValue), nil
		}
	case DataType_String, DataType_Text, DataType_UUID:
		if x, ok := m.GetValue().(*Payload_Metric_StringValue); ok {
			return model.String(x.StringValue), nil
		}
	case DataType_Bytes, DataType_File:
		if x, ok := m.GetValue().(*Payload_Metric_BytesValue); ok {
			return bytesValue(x.BytesValue)
		}
	default:
		if dt.IsArray() {
			x, ok := m.GetValue().(*Payload_Metric_BytesValue)
			if !ok {
				return model.Value{}, mismatch(m, dt)
			}
			v, err := DecodeArray(dt, x.BytesValue)
			if err != nil {
				return model.Value{}, fmt.Errorf("sparkplugb: metric %q: %w", metricID(m), err)
			}
			return v, nil
		}
		return model.Value{}, fmt.Errorf("sparkplugb: metric %q: datatype %d: %w", metricID(m), dt, ErrUnsupported)
	}
	return model.Value{}, mismatch(m, dt)
}

// intAs reads the bit pattern u of an integer field as integer datatype
// dt: sign-extended (signed types) or truncated (unsigned) to dt's width.
func intAs(u uint64, dt DataType) model.Value {
	switch dt {
	case DataType_Int8:
		return model.Int(int64(int8(u)))
	case DataType_Int16:
		return model.Int(int64(int16(u)))
	case DataType_Int32:
		return model.Int(int64(int32(u)))
	case DataType_Int64, DataType_DateTime:
		return model.Int(int64(u))
	case DataType_UInt8:
		return model.Uint(uint64(uint8(u)))
	case DataType_UInt16:
		return model.Uint(uint64(uint16(u)))
	case DataType_UInt32:
		return model.Uint(uint64(uint32(u)))
	}
	return model.Uint(u)
}

func intField(m *Metric) (uint64, bool) {
	switch x := m.GetValue().(type) {
	case *Payload_Metric_IntValue:
		return uint64(x.IntValue), true
	case *Payload_Metric_LongValue:
		return x.LongValue, true
	}
	return 0, false
}

func valueByField(m *Metric) (model.Value, error) {
	switch x := m.GetValue().(type) {
	case *Payload_Metric_IntValue:
		return model.Uint(uint64(x.IntValue)), nil
	case *Payload_Metric_LongValue:
		return model.Uint(x.LongValue), nil
	case *Payload_Metric_FloatValue:
		return model.Float32(x.FloatValue), nil
	case *Payload_Metric_DoubleValue:
		return model.Float(x.DoubleValue), nil
	case *Payload_Metric_BooleanValue:
		return model.Bool(x.BooleanValue), nil
	case *Payload_Metric_StringValue:
		return model.String(x.StringValue), nil
	case *Payload_Metric_BytesValue:
		return bytesValue(x.BytesValue)
	}
	return model.Value{}, fmt.Errorf("sparkplugb: metric %q: value %T: %w", metricID(m), m.GetValue(), ErrUnsupported)
}

func bytesValue(b []byte) (model.Value, error) {
	if len(b) > maxArrayElems {
		return model.Value{}, fmt.Errorf("sparkplugb: %d bytes exceed the limit of %d elements", len(b), maxArrayElems)
	}
	elems := make([]model.Value, len(b))
	for i, c := range b {
		elems[i] = model.Uint(uint64(c))
	}
	return model.Array(elems), nil
}

func mismatch(m *Metric, dt DataType) error {
	return fmt.Errorf("sparkplugb: metric %q: datatype %s with value field %T", metricID(m), dt, m.GetValue())
}

func metricID(m *Metric) string {
	if m.Name != nil {
		return m.GetName()
	}
	return fmt.Sprintf("alias %d", m.GetAlias())
}

// DataTypeOf is the datatype Weir gives a value when nothing else is
// configured: the widest of its kind (Int64, UInt64, Double), Boolean,
// String, and the matching array type for arrays (by the first element;
// an empty or nested array is Unknown). The invalid Value is Unknown.
func DataTypeOf(v model.Value) DataType {
	switch v.Kind() {
	case model.KindBool:
		return DataType_Boolean
	case model.KindInt:
		return DataType_Int64
	case model.KindUint:
		return DataType_UInt64
	case model.KindFloat:
		return DataType_Double
	case model.KindString:
		return DataType_String
	case model.KindArray:
		el := v.Elems()
		if len(el) == 0 {
			return DataType_Unknown
		}
		switch el[0].Kind() {
		case model.KindBool:
			return DataType_BooleanArray
		case model.KindInt:
			return DataType_Int64Array
		case model.KindUint:
			return DataType_UInt64Array
		case model.KindFloat:
			return DataType_DoubleArray
		case model.KindString:
			return DataType_StringArray
		}
	}
	return DataType_Unknown
}

// SetValue stores v into m as datatype dt: it sets the value field (or
// is_null for the invalid Value) and leaves m.Datatype alone, because the
// datatype belongs in BIRTH messages only. Integers are range-checked
// against dt's width; a Float is accepted by an integer datatype only when
// it is integral and in range; Int and Uint are accepted by Float/Double.
func SetValue(m *Metric, v model.Value, dt DataType) error {
	if !v.IsValid() {
		m.Value = nil
		m.IsNull = proto.Bool(true)
		return nil
	}
	m.IsNull = nil
	switch dt {
	case DataType_Int8, DataType_Int16, DataType_Int32, DataType_Int64, DataType_DateTime:
		i, ok := asInt64(v)
		if !ok || !intFits(i, dt) {
			return cannot(v, dt)
		}
		if dt == DataType_Int64 || dt == DataType_DateTime {
			m.Value = &Payload_Metric_LongValue{LongValue: uint64(i)}
		} else {
			m.Value = &Payload_Metric_IntValue{IntValue: uint32(int32(i))}
		}
	case DataType_UInt8, DataType_UInt16, DataType_UInt32, DataType_UInt64:
		u, ok := asUint64(v)
		if !ok || !uintFits(u, dt) {
			return cannot(v, dt)
		}
		if dt == DataType_UInt64 {
			m.Value = &Payload_Metric_LongValue{LongValue: u}
		} else {
			m.Value = &Payload_Metric_IntValue{IntValue: uint32(u)}
		}
	case DataType_Float, DataType_Double:
		f, ok := v.Float64()
		if !ok || v.Kind() == model.KindBool {
			return cannot(v, dt)
		}
		if dt == DataType_Float {
			m.Value = &Payload_Metric_FloatValue{FloatValue: float32(f)}
		} else {
			m.Value = &Payload_Metric_DoubleValue{DoubleValue: f}
		}
	case DataType_Boolean:
		if v.Kind() != model.KindBool {
			return cannot(v, dt)
		}
		m.Value = &Payload_Metric_BooleanValue{BooleanValue: v.AsBool()}
	case DataType_String, DataType_Text, DataType_UUID:
		if v.Kind() != model.KindString {
			return cannot(v, dt)
		}
		m.Value = &Payload_Metric_StringValue{StringValue: v.AsString()}
	case DataType_Bytes, DataType_File:
		b, err := AppendArray(nil, DataType_UInt8Array, v)
		if err != nil {
			return err
		}
		m.Value = &Payload_Metric_BytesValue{BytesValue: b}
	default:
		if !dt.IsArray() {
			return fmt.Errorf("sparkplugb: set value: datatype %d: %w", dt, ErrUnsupported)
		}
		b, err := AppendArray(nil, dt, v)
		if err != nil {
			return err
		}
		m.Value = &Payload_Metric_BytesValue{BytesValue: b}
	}
	return nil
}

func cannot(v model.Value, dt DataType) error {
	return fmt.Errorf("sparkplugb: cannot store %s value %s as %s", v.Kind(), v, dt)
}

func asInt64(v model.Value) (int64, bool) {
	switch v.Kind() {
	case model.KindInt:
		return v.AsInt(), true
	case model.KindUint:
		if v.AsUint() > math.MaxInt64 {
			return 0, false
		}
		return int64(v.AsUint()), true
	case model.KindFloat:
		f := v.AsFloat()
		if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

func asUint64(v model.Value) (uint64, bool) {
	switch v.Kind() {
	case model.KindUint:
		return v.AsUint(), true
	case model.KindInt:
		if v.AsInt() < 0 {
			return 0, false
		}
		return uint64(v.AsInt()), true
	case model.KindFloat:
		f := v.AsFloat()
		if f != math.Trunc(f) || f < 0 || f >= math.MaxUint64 {
			return 0, false
		}
		return uint64(f), true
	}
	return 0, false
}

func intFits(i int64, dt DataType) bool {
	switch dt {
	case DataType_Int8, DataType_Int8Array:
		return i >= math.MinInt8 && i <= math.MaxInt8
	case DataType_Int16, DataType_Int16Array:
		return i >= math.MinInt16 && i <= math.MaxInt16
	case DataType_Int32, DataType_Int32Array:
		return i >= math.MinInt32 && i <= math.MaxInt32
	}
	return true
}

func uintFits(u uint64, dt DataType) bool {
	switch dt {
	case DataType_UInt8, DataType_UInt8Array:
		return u <= math.MaxUint8
	case DataType_UInt16, DataType_UInt16Array:
		return u <= math.MaxUint16
	case DataType_UInt32, DataType_UInt32Array:
		return u <= math.MaxUint32
	}
	return true
}

// elemSize is the packed width of one element of an array datatype (0 for
// the variable-width BooleanArray and StringArray).
func elemSize(dt DataType) int {
	switch dt {
	case DataType_Int8Array, DataType_UInt8Array:
		return 1
	case DataType_Int16Array, DataType_UInt16Array:
		return 2
	case DataType_Int32Array, DataType_UInt32Array, DataType_FloatArray:
		return 4
	case DataType_Int64Array, DataType_UInt64Array, DataType_DoubleArray, DataType_DateTimeArray:
		return 8
	}
	return 0
}

// AppendArray appends the spec 3.0 packed form of the array Value v as
// array datatype dt to dst.
func AppendArray(dst []byte, dt DataType, v model.Value) ([]byte, error) {
	if v.Kind() != model.KindArray {
		return dst, cannot(v, dt)
	}
	el := v.Elems()
	switch dt {
	case DataType_BooleanArray:
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(el)))
		var cur byte
		for i, e := range el {
			if e.Kind() != model.KindBool {
				return dst, fmt.Errorf("sparkplugb: %s element %d: %w", dt, i, cannot(e, DataType_Boolean))
			}
			if e.AsBool() {
				cur |= 0x80 >> (i % 8)
			}
			if i%8 == 7 {
				dst = append(dst, cur)
				cur = 0
			}
		}
		if len(el)%8 != 0 {
			dst = append(dst, cur)
		}
		return dst, nil
	case DataType_StringArray:
		for i, e := range el {
			if e.Kind() != model.KindString || strings.IndexByte(e.AsString(), 0) >= 0 {
				return dst, fmt.Errorf("sparkplugb: %s element %d: not a string without NUL", dt, i)
			}
			dst = append(dst, e.AsString()...)
			dst = append(dst, 0)
		}
		return dst, nil
	}
	for i, e := range el {
		var bits uint64
		switch dt {
		case DataType_FloatArray:
			f, ok := e.Float64()
			if !ok || e.Kind() == model.KindBool {
				return dst, fmt.Errorf("sparkplugb: %s element %d: %w", dt, i, cannot(e, DataType_Float))
			}
			bits = uint64(math.Float32bits(float32(f)))
		case DataType_DoubleArray:
			f, ok := e.Float64()
			if !ok || e.Kind() == model.KindBool {
				return dst, fmt.Errorf("sparkplugb: %s element %d: %w", dt, i, cannot(e, DataType_Double))
			}
			bits = math.Float64bits(f)
		case DataType_Int8Array, DataType_Int16Array, DataType_Int32Array, DataType_Int64Array, DataType_DateTimeArray:
			n, ok := asInt64(e)
			if !ok || !intFits(n, dt) {
				return dst, fmt.Errorf("sparkplugb: %s element %d: %w", dt, i, cannot(e, dt))
			}
			bits = uint64(n)
		case DataType_UInt8Array, DataType_UInt16Array, DataType_UInt32Array, DataType_UInt64Array:
			n, ok := asUint64(e)
			if !ok || !uintFits(n, dt) {
				return dst, fmt.Errorf("sparkplugb: %s element %d: %w", dt, i, cannot(e, dt))
			}
			bits = n
		default:
			return dst, fmt.Errorf("sparkplugb: array datatype %d: %w", dt, ErrUnsupported)
		}
		switch elemSize(dt) {
		case 1:
			dst = append(dst, byte(bits))
		case 2:
			dst = binary.LittleEndian.AppendUint16(dst, uint16(bits))
		case 4:
			dst = binary.LittleEndian.AppendUint32(dst, uint32(bits))
		default:
			dst = binary.LittleEndian.AppendUint64(dst, bits)
		}
	}
	return dst, nil
}

// DecodeArray parses the packed bytes of array datatype dt.
func DecodeArray(dt DataType, b []byte) (model.Value, error) {
	switch dt {
	case DataType_BooleanArray:
		if len(b) < 4 {
			return model.Value{}, fmt.Errorf("%s: %d bytes, need a 4-byte count", dt, len(b))
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b))*8 || uint64(len(b)) > (uint64(n)+7)/8 {
			return model.Value{}, fmt.Errorf("%s: count %d does not match %d data bytes", dt, n, len(b))
		}
		if n > maxArrayElems {
			return model.Value{}, fmt.Errorf("%s: %d elements exceed the limit of %d", dt, n, maxArrayElems)
		}
		el := make([]model.Value, n)
		for i := range el {
			el[i] = model.Bool(b[i/8]&(0x80>>(i%8)) != 0)
		}
		return model.Array(el), nil
	case DataType_StringArray:
		if len(b) == 0 {
			return model.Array([]model.Value{}), nil
		}
		if b[len(b)-1] != 0 {
			return model.Value{}, fmt.Errorf("%s: last string not NUL-terminated", dt)
		}
		parts := strings.Split(string(b[:len(b)-1]), "\x00")
		if len(parts) > maxArrayElems {
			return model.Value{}, fmt.Errorf("%s: %d elements exceed the limit of %d", dt, len(parts), maxArrayElems)
		}
		el := make([]model.Value, len(parts))
		for i, s := range parts {
			if !utf8.ValidString(s) {
				return model.Value{}, fmt.Errorf("%s: element %d is not valid UTF-8", dt, i)
			}
			el[i] = model.String(s)
		}
		return model.Array(el), nil
	}
	size := elemSize(dt)
	if size == 0 {
		return model.Value{}, fmt.Errorf("array datatype %d: %w", dt, ErrUnsupported)
	}
	if len(b)%size != 0 {
		return model.Value{}, fmt.Errorf("%s: %d bytes is not a multiple of %d", dt, len(b), size)
	}
	n := len(b) / size
	if n > maxArrayElems {
		return model.Value{}, fmt.Errorf("%s: %d elements exceed the limit of %d", dt, n, maxArrayElems)
	}
	el := make([]model.Value, n)
	for i := range el {
		p := b[i*size:]
		switch dt {
		case DataType_Int8Array:
			el[i] = model.Int(int64(int8(p[0])))
		case DataType_UInt8Array:
			el[i] = model.Uint(uint64(p[0]))
		case DataType_Int16Array:
			el[i] = model.Int(int64(int16(binary.LittleEndian.Uint16(p))))
		case DataType_UInt16Array:
			el[i] = model.Uint(uint64(binary.LittleEndian.Uint16(p)))
		case DataType_Int32Array:
			el[i] = model.Int(int64(int32(binary.LittleEndian.Uint32(p))))
		case DataType_UInt32Array:
			el[i] = model.Uint(uint64(binary.LittleEndian.Uint32(p)))
		case DataType_FloatArray:
			el[i] = model.Float32(math.Float32frombits(binary.LittleEndian.Uint32(p)))
		case DataType_Int64Array, DataType_DateTimeArray:
			el[i] = model.Int(int64(binary.LittleEndian.Uint64(p)))
		case DataType_UInt64Array:
			el[i] = model.Uint(binary.LittleEndian.Uint64(p))
		case DataType_DoubleArray:
			el[i] = model.Float(math.Float64frombits(binary.LittleEndian.Uint64(p)))
		}
	}
	return model.Array(el), nil
}

// QualityCode is the Int32 value of the Quality property for q.
func QualityCode(q model.QualityCode) int32 {
	switch q {
	case model.Good:
		return QualityGood
	case model.Uncertain:
		return QualityStale
	}
	return QualityBad
}

// QualityFromCode maps a Quality property value back to a model code:
// 192 → Good, 500 (stale) → Uncertain, anything else → Bad. Other values
// from publishers that use the classic OPC DA quality byte are folded by
// its class bits: 0xC0–0xFF good, 0x40–0x7F uncertain.
func QualityFromCode(c int64) model.QualityCode {
	switch {
	case c >= 0xC0 && c <= 0xFF:
		return model.Good
	case c == int64(QualityStale), c >= 0x40 && c <= 0x7F:
		return model.Uncertain
	}
	return model.Bad
}
