package sparkplugb

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ints(v ...int64) model.Value {
	el := make([]model.Value, len(v))
	for i, x := range v {
		el[i] = model.Int(x)
	}
	return model.Array(el)
}

func uints(v ...uint64) model.Value {
	el := make([]model.Value, len(v))
	for i, x := range v {
		el[i] = model.Uint(x)
	}
	return model.Array(el)
}

func floats(v ...float64) model.Value {
	el := make([]model.Value, len(v))
	for i, x := range v {
		el[i] = model.Float(x)
	}
	return model.Array(el)
}

func bools(v ...bool) model.Value {
	el := make([]model.Value, len(v))
	for i, x := range v {
		el[i] = model.Bool(x)
	}
	return model.Array(el)
}

func strs(v ...string) model.Value {
	el := make([]model.Value, len(v))
	for i, x := range v {
		el[i] = model.String(x)
	}
	return model.Array(el)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestArrayGolden uses the examples of the spec's chapter 6 ("Array
// Types"). FloatArray and DoubleArray examples are printed big-endian in
// the spec although the text says little-endian; the vectors here are the
// little-endian bytes of the same numbers. The spec's DateTimeArray example
// is truncated (12 bytes for two 8-byte values), so we use our own.
func TestArrayGolden(t *testing.T) {
	tests := []struct {
		name string
		dt   DataType
		v    model.Value
		hex  string
	}{
		{"Int8Array", DataType_Int8Array, ints(-23, 123), "e97b"},
		{"Int16Array", DataType_Int16Array, ints(-30000, 30000), "d08a3075"},
		{"Int32Array", DataType_Int32Array, ints(-1, 315338746), "fffffffffaafcb12"},
		{"Int32Array protocols.md", DataType_Int32Array, ints(123456789, 987654321), "15cd5b07b168de3a"},
		{"Int64Array", DataType_Int64Array, ints(-4270929666821191986, -3601064768563266876), "ce0672ac189cbac4c4ba9c18ac7206ce"},
		{"UInt8Array", DataType_UInt8Array, uints(23, 250), "17fa"},
		{"UInt16Array", DataType_UInt16Array, uints(30, 52360), "1e0088cc"},
		{"UInt32Array", DataType_UInt32Array, uints(52, 3293969225), "3400000049fb55c4"},
		{"UInt64Array", DataType_UInt64Array, uints(52, 16444743074749521625), "3400000000000000d99e02d1b27637e4"},
		{"FloatArray", DataType_FloatArray, floats(1.23, 89.341), "a4709d3f98aeb242"}, // float32s decode as the decimals they stand for
		{"DoubleArray", DataType_DoubleArray, floats(12.354213, 1022.9123213), "d7a205685bb528408e171c6f4cf78f40"},
		{"BooleanArray", DataType_BooleanArray, bools(false, false, true, true, false, true, false, false, true, true, false, true), "0c00000034d0"},
		{"BooleanArray empty", DataType_BooleanArray, bools(), "00000000"},
		{"StringArray", DataType_StringArray, strs("ABC", "hello"), "41424300" + "68656c6c6f00"},
		{"DateTimeArray", DataType_DateTimeArray, ints(1256102875335, 1656107875000), "c7d0907524010000b8bab89781010000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendArray(nil, tt.dt, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			want := mustHex(t, tt.hex)
			if !bytes.Equal(got, want) {
				t.Fatalf("encode = %x, want %x", got, want)
			}
			back, err := DecodeArray(tt.dt, want)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(tt.v) {
				t.Fatalf("decode = %v, want %v", back, tt.v)
			}
		})
	}
}

func TestDecodeArrayErrors(t *testing.T) {
	tests := []struct {
		name string
		dt   DataType
		b    []byte
	}{
		{"int32 ragged", DataType_Int32Array, []byte{1, 2, 3}},
		{"bool no count", DataType_BooleanArray, []byte{1, 0}},
		{"bool count too big", DataType_BooleanArray, []byte{9, 0, 0, 0, 0xff}},
		{"bool extra bytes", DataType_BooleanArray, []byte{1, 0, 0, 0, 0xff, 0xff}},
		{"bool huge count", DataType_BooleanArray, []byte{0xff, 0xff, 0xff, 0xff, 0}},
		{"string unterminated", DataType_StringArray, []byte("abc")},
		{"string bad utf8", DataType_StringArray, []byte{0xff, 0}},
		{"not array", DataType_DataSet, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeArray(tt.dt, tt.b); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

// TestValueRoundTrip stores each value with SetValue, encodes and decodes
// the payload, and reads it back with ValueOf.
func TestValueRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		dt   DataType
		in   model.Value
		want model.Value // zero means same as in
	}{
		{"Int8 min", DataType_Int8, model.Int(-128), model.Value{}},
		{"Int16 neg", DataType_Int16, model.Int(-30000), model.Value{}},
		{"Int32 neg", DataType_Int32, model.Int(math.MinInt32), model.Value{}},
		{"Int64 neg", DataType_Int64, model.Int(math.MinInt64), model.Value{}},
		{"Int64 from uint", DataType_Int64, model.Uint(7), model.Int(7)},
		{"Int32 from integral float", DataType_Int32, model.Float(-5), model.Int(-5)},
		{"UInt8 max", DataType_UInt8, model.Uint(255), model.Value{}},
		{"UInt16", DataType_UInt16, model.Uint(65535), model.Value{}},
		{"UInt32 max", DataType_UInt32, model.Uint(math.MaxUint32), model.Value{}},
		{"UInt64 max", DataType_UInt64, model.Uint(math.MaxUint64), model.Value{}},
		{"UInt64 from int", DataType_UInt64, model.Int(3), model.Uint(3)},
		{"Float", DataType_Float, model.Float(1.5), model.Value{}},
		// A float32 comes back as the decimal it stands for (model.Float32).
		{"Float narrows", DataType_Float, model.Float(0.1), model.Float(0.1)},
		{"Float narrows precision", DataType_Float, model.Float(0.123456789), model.Float(0.12345679)},
		{"Double", DataType_Double, model.Float(math.Pi), model.Value{}},
		{"Double NaN", DataType_Double, model.Float(math.NaN()), model.Value{}},
		{"Double from int", DataType_Double, model.Int(-2), model.Float(-2)},
		{"Boolean", DataType_Boolean, model.Bool(true), model.Value{}},
		{"String", DataType_String, model.String("héllo"), model.Value{}},
		{"Text", DataType_Text, model.String("long text"), model.Value{}},
		{"UUID", DataType_UUID, model.String("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), model.Value{}},
		{"DateTime", DataType_DateTime, model.Int(1656107875000), model.Value{}},
		{"Bytes", DataType_Bytes, uints(0, 1, 255), model.Value{}},
		{"Int16Array", DataType_Int16Array, ints(-1, 2), model.Value{}},
		{"DoubleArray", DataType_DoubleArray, floats(1.25, -2), model.Value{}},
		{"BooleanArray", DataType_BooleanArray, bools(true, false, true), model.Value{}},
		{"StringArray", DataType_StringArray, strs("a", "", "b"), model.Value{}},
		{"null", DataType_Double, model.Value{}, model.Value{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Metric{Name: proto.String("m"), Datatype: proto.Uint32(uint32(tt.dt))}
			if err := SetValue(m, tt.in, tt.dt); err != nil {
				t.Fatal(err)
			}
			b, err := Encode(&Payload{Metrics: []*Metric{m}})
			if err != nil {
				t.Fatal(err)
			}
			p, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ValueOf(p.GetMetrics()[0])
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if !want.IsValid() {
				want = tt.in
			}
			if !got.Equal(want) {
				t.Fatalf("got %#v, want %#v", got, want)
			}
			if !tt.in.IsValid() && !p.GetMetrics()[0].GetIsNull() {
				t.Fatal("invalid value must set is_null")
			}
		})
	}
}

func TestSetValueRejects(t *testing.T) {
	tests := []struct {
		name string
		dt   DataType
		in   model.Value
	}{
		{"Int8 overflow", DataType_Int8, model.Int(128)},
		{"UInt8 negative", DataType_UInt8, model.Int(-1)},
		{"UInt32 overflow", DataType_UInt32, model.Uint(1 << 32)},
		{"Int64 from huge uint", DataType_Int64, model.Uint(math.MaxUint64)},
		{"Int from fraction", DataType_Int32, model.Float(1.5)},
		{"Boolean from int", DataType_Boolean, model.Int(1)},
		{"Double from bool", DataType_Double, model.Bool(true)},
		{"String from int", DataType_String, model.Int(1)},
		{"array from scalar", DataType_Int32Array, model.Int(1)},
		{"Int8Array overflow", DataType_Int8Array, ints(1000)},
		{"StringArray NUL", DataType_StringArray, strs("a\x00b")},
		{"DataSet", DataType_DataSet, model.Int(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := SetValue(&Metric{}, tt.in, tt.dt); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

func TestValueOfLenient(t *testing.T) {
	tests := []struct {
		name string
		m    *Metric
		want model.Value
	}{
		{"UInt32 in long_value (Tahu JS)", &Metric{Datatype: proto.Uint32(7), Value: &Payload_Metric_LongValue{LongValue: 42}}, model.Uint(42)},
		{"Int32 sign-extends", &Metric{Datatype: proto.Uint32(3), Value: &Payload_Metric_IntValue{IntValue: 0xffffffff}}, model.Int(-1)},
		{"Int8 sign-extends", &Metric{Datatype: proto.Uint32(1), Value: &Payload_Metric_IntValue{IntValue: 0xff}}, model.Int(-1)},
		{"no datatype int", &Metric{Value: &Payload_Metric_IntValue{IntValue: 5}}, model.Uint(5)},
		{"no datatype double", &Metric{Value: &Payload_Metric_DoubleValue{DoubleValue: 2.5}}, model.Float(2.5)},
		{"no datatype string", &Metric{Value: &Payload_Metric_StringValue{StringValue: "x"}}, model.String("x")},
		{"no value", &Metric{Datatype: proto.Uint32(10)}, model.Value{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValueOf(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	t.Run("mismatch", func(t *testing.T) {
		m := &Metric{Name: proto.String("x"), Datatype: proto.Uint32(11), Value: &Payload_Metric_StringValue{StringValue: "true"}}
		if _, err := ValueOf(m); err == nil {
			t.Fatal("want error for Boolean carried in string_value")
		}
	})
	t.Run("dataset unsupported", func(t *testing.T) {
		m := &Metric{Datatype: proto.Uint32(16), Value: &Payload_Metric_DatasetValue{DatasetValue: &Payload_DataSet{}}}
		if _, err := ValueOf(m); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("err = %v, want ErrUnsupported", err)
		}
	})
}

func TestDataTypeOf(t *testing.T) {
	tests := []struct {
		v    model.Value
		want DataType
	}{
		{model.Bool(true), DataType_Boolean},
		{model.Int(1), DataType_Int64},
		{model.Uint(1), DataType_UInt64},
		{model.Float(1), DataType_Double},
		{model.String(""), DataType_String},
		{ints(1), DataType_Int64Array},
		{bools(true), DataType_BooleanArray},
		{model.Array(nil), DataType_Unknown},
		{model.Value{}, DataType_Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.v.GoString(), func(t *testing.T) {
			if got := DataTypeOf(tt.v); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestQuality(t *testing.T) {
	for _, q := range []model.QualityCode{model.Good, model.Uncertain, model.Bad} {
		if got := QualityFromCode(int64(QualityCode(q))); got != q {
			t.Errorf("%v: round trip gave %v", q, got)
		}
	}
	m := &Metric{}
	AddProperty(m, QualityProperty, Int32Property(QualityBad))
	AddProperty(m, "weir_seq", UInt64Property(99))
	if v, ok := PropertyInt(Property(m, QualityProperty)); !ok || v != 0 {
		t.Fatalf("Quality = %d %v", v, ok)
	}
	if v, ok := PropertyInt(Property(m, "weir_seq")); !ok || v != 99 {
		t.Fatalf("weir_seq = %d %v", v, ok)
	}
	if Property(m, "missing") != nil {
		t.Fatal("missing property found")
	}
}

func TestTopic(t *testing.T) {
	tests := []struct {
		in   string
		want Topic
		ok   bool
	}{
		{"spBv1.0/G1/NBIRTH/E1", Topic{Namespace: Namespace, Group: "G1", Type: NBIRTH, EdgeNode: "E1"}, true},
		{"spBv1.0/G1/DDATA/E1/D:1", Topic{Namespace: Namespace, Group: "G1", Type: DDATA, EdgeNode: "E1", Device: "D:1"}, true},
		{"spBv1.0/G1/NCMD/E1", Topic{Namespace: Namespace, Group: "G1", Type: NCMD, EdgeNode: "E1"}, true},
		{"spBv1.0/STATE/host1", Topic{Namespace: Namespace, Type: STATE, HostID: "host1"}, true},
		{"STATE/host1", Topic{Type: STATE, HostID: "host1"}, true},
		{"spBv1.0/G1/NBIRTH/E1/D1", Topic{}, false},
		{"spBv1.0/G1/DBIRTH/E1", Topic{}, false},
		{"spBv1.0/G1/BOGUS/E1", Topic{}, false},
		{"spBv1.0/G1/STATE/E1", Topic{}, false},
		{"spAv1.0/G1/NBIRTH/E1", Topic{}, false},
		{"spBv1.0//NBIRTH/E1", Topic{}, false},
		{"spBv1.0/G+/NBIRTH/E1", Topic{}, false},
		{"spBv1.0/G1/NBIRTH/#", Topic{}, false},
		{"spBv1.0/STATE/a/b", Topic{}, false},
		{"spBv1.0/G1", Topic{}, false},
		{"", Topic{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTopic(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				if !errors.Is(err, ErrTopic) {
					t.Fatalf("err %v does not wrap ErrTopic", err)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Fatalf("String() = %q, want %q", s, tt.in)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"Plant 1", true}, {"line:3", true}, {"ünïcode", true},
		{"", false}, {"a/b", false}, {"a+b", false}, {"a#", false}, {"\xff", false}, {"a\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if err := ValidateID(tt.id); (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if err := CheckMetricName("Motor/Speed rpm"); err != nil {
		t.Fatalf("slash and space are fine: %v", err)
	}
	if err := CheckMetricName("a.b"); err == nil {
		t.Fatal("'.' is discouraged")
	}
}

func TestState(t *testing.T) {
	tests := []struct {
		in   string
		want State
		ok   bool
	}{
		{`{"online":true,"timestamp":1668114759262}`, State{Online: true, Timestamp: 1668114759262}, true},
		{` {"timestamp":5,"online":false} `, State{Timestamp: 5}, true},
		{"ONLINE", State{Online: true, Legacy: true}, true},
		{"OFFLINE", State{Legacy: true}, true},
		{`{"online":true}`, State{}, false},
		{`{"timestamp":1}`, State{}, false},
		{`online`, State{}, false},
		{``, State{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseState([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	s := State{Online: true, Timestamp: 42}
	if got := string(s.AppendJSON(nil)); got != `{"online":true,"timestamp":42}` {
		t.Fatalf("AppendJSON = %s", got)
	}
	if back, err := ParseState(s.AppendJSON(nil)); err != nil || back != s {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	if string(State{}.LegacyPayload()) != "OFFLINE" {
		t.Fatal("legacy offline payload")
	}
}

func TestDecodeGarbage(t *testing.T) {
	if _, err := Decode([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Fatal("want error")
	}
}
