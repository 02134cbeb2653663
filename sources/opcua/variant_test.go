package opcua

import (
	"math"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/model"
)

func TestVariantMapping(t *testing.T) {
	g := ua.NewGUID("72962B91-FA75-4AE6-8D28-B404DC7DAF63")
	for _, tc := range []struct {
		name string
		in   any
		want model.Value
	}{
		{"boolean", true, model.Bool(true)},
		{"sbyte", int8(-1), model.Int(-1)},
		{"byte", uint8(255), model.Uint(255)},
		{"int16", int16(-300), model.Int(-300)},
		{"uint16", uint16(65535), model.Uint(65535)},
		{"int32", int32(math.MinInt32), model.Int(math.MinInt32)},
		{"uint32", uint32(math.MaxUint32), model.Uint(math.MaxUint32)},
		{"int64", int64(math.MinInt64), model.Int(math.MinInt64)},
		{"uint64", uint64(math.MaxUint64), model.Uint(math.MaxUint64)},
		{"float", float32(0.5), model.Float(0.5)},
		{"double", math.Inf(-1), model.Float(math.Inf(-1))},
		{"string", "x", model.String("x")},
		{"xml", ua.XMLElement("<a/>"), model.String("<a/>")},
		{"datetime", time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC), model.String("2025-03-04T05:06:07.000000008Z")},
		{"datetime zero", time.Time{}, model.String("")},
		{"bytestring", []byte("hi"), model.String("aGk=")},
		{"guid", g, model.String("72962B91-FA75-4AE6-8D28-B404DC7DAF63")},
		{"nodeid", ua.NewNumericNodeID(2, 7), model.String("ns=2;i=7")},
		{"expanded nodeid", ua.NewNumericExpandedNodeID(0, 85), model.String("i=85")},
		{"qualifiedname", &ua.QualifiedName{NamespaceIndex: 3, Name: "Q"}, model.String("3:Q")},
		{"localizedtext", ua.NewLocalizedText("t"), model.String("t")},
		{"statuscode", ua.StatusBadTimeout, model.String("BadTimeout")},
		{"statuscode good", ua.StatusOK, model.String("Good")},
		{"null", nil, model.Value{}},
		{"float array", []float32{1, 2}, model.Array([]model.Value{model.Float(1), model.Float(2)})},
		{"byte array", ua.ByteArray{1, 2}, model.Array([]model.Value{model.Uint(1), model.Uint(2)})},
		{"string array", []string{}, model.Array([]model.Value{})},
		{"time array", []time.Time{time.Unix(0, 0).UTC()}, model.Array([]model.Value{model.String("1970-01-01T00:00:00Z")})},
		{"nodeid array", []*ua.NodeID{ua.NewStringNodeID(1, "a")}, model.Array([]model.Value{model.String("ns=1;s=a")})},
		{"matrix", [][]int32{{1, 2}, {3, 4}}, model.Array([]model.Value{
			model.Array([]model.Value{model.Int(1), model.Int(2)}), model.Array([]model.Value{model.Int(3), model.Int(4)})})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := anyToValue(tc.in)
			if !ok || !got.Equal(tc.want) {
				t.Errorf("got %#v (%v), want %#v", got, ok, tc.want)
			}
		})
	}
	for _, unsupported := range []any{&ua.ExtensionObject{}, &ua.DataValue{}, &ua.DiagnosticInfo{}, []*ua.ExtensionObject{{}}, struct{}{}} {
		if v, ok := anyToValue(unsupported); ok || v.IsValid() {
			t.Errorf("%T mapped to %v", unsupported, v)
		}
	}
}

func TestQuality(t *testing.T) {
	for _, tc := range []struct {
		in   ua.StatusCode
		want model.Quality
	}{
		{ua.StatusOK, model.Quality{}},
		{ua.StatusOK | 0x0400, model.Quality{}}, // info bits only
		{ua.StatusGoodLocalOverride, model.Quality{Code: model.Good, Reason: "GoodLocalOverride"}},
		{ua.StatusUncertainLastUsableValue, model.Quality{Code: model.Uncertain, Reason: "UncertainLastUsableValue"}},
		{ua.StatusBadSensorFailure | 0x0100, model.Quality{Code: model.Bad, Reason: "BadSensorFailure"}},
		{0xC1230000, model.Quality{Code: model.Bad, Reason: "0xc1230000"}},
	} {
		if got := qualityOf(tc.in); got != tc.want {
			t.Errorf("qualityOf(%#x) = %v, want %v", uint32(tc.in), got, tc.want)
		}
	}
}

func TestDeadbandAndDuplicates(t *testing.T) {
	at := func(sec int64) time.Time { return time.Unix(sec, 0) }
	dv := func(v any, sec int64, st ua.StatusCode) *ua.DataValue {
		return &ua.DataValue{Value: ua.MustVariant(v), SourceTimestamp: at(sec), Status: st}
	}
	s := &Source{}
	abs := &item{path: "a", deadband: &Deadband{Type: "absolute", Value: 1}}
	pct := &item{path: "p", deadband: &Deadband{Type: "percent", Value: 10}, hasEU: true, euLow: 0, euHigh: 50}
	arr := &item{path: "r", deadband: &Deadband{Type: "absolute", Value: 1}}
	for _, tc := range []struct {
		name string
		it   *item
		dv   *ua.DataValue
		want bool
	}{
		{"first value passes", abs, dv(10.0, 1, 0), true},
		{"same again is a duplicate", abs, dv(10.0, 1, 0), false},
		{"inside deadband", abs, dv(10.9, 2, 0), false},
		{"exactly the deadband", abs, dv(11.0, 3, 0), false},
		{"past the deadband", abs, dv(11.5, 4, 0), true},
		{"status change passes", abs, dv(11.6, 5, ua.StatusUncertainLastUsableValue), true},
		{"back to good passes", abs, dv(11.6, 6, 0), true},
		{"percent first", pct, dv(int32(0), 1, 0), true},
		{"percent inside 5", pct, dv(int32(5), 2, 0), false},
		{"percent past 5", pct, dv(int32(6), 3, 0), true},
		{"array first", arr, dv([]float64{1, 2}, 1, 0), true},
		{"array inside", arr, dv([]float64{1.5, 2.5}, 2, 0), false},
		{"array one element past", arr, dv([]float64{1, 3.5}, 3, 0), true},
		{"array longer", arr, dv([]float64{1, 3.5, 0}, 4, 0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := s.sample(tc.it, tc.dv, 0, true)
			if got != tc.want {
				t.Errorf("passed = %v, want %v", got, tc.want)
			}
		})
	}
	// Without a source timestamp, equal values are not duplicates: the
	// receive time differs.
	plain := &item{path: "x"}
	if _, ok := s.sample(plain, &ua.DataValue{Value: ua.MustVariant(1.0)}, 1, true); !ok {
		t.Error("first unstamped value dropped")
	}
	if _, ok := s.sample(plain, &ua.DataValue{Value: ua.MustVariant(1.0)}, 2, true); !ok {
		t.Error("unstamped repeat dropped")
	}
	smp, _ := s.sample(plain, &ua.DataValue{Value: ua.MustVariant(2.0), ServerTimestamp: at(9)}, 3, true)
	if smp.SourceTime != at(9).UnixNano() || smp.EdgeTime != 3 {
		t.Errorf("server timestamp fallback: %+v", smp)
	}
	smp, _ = s.sample(plain, &ua.DataValue{Value: ua.MustVariant(&ua.ExtensionObject{}), Status: ua.StatusOK}, 4, false)
	if smp.Quality.Code != model.Bad || smp.Quality.Reason != reasonUnsupported {
		t.Errorf("unsupported: %+v", smp)
	}
}

// FuzzVariant decodes arbitrary bytes as an OPC UA Variant, as a server's
// notification would arrive, and maps it: the mapping must not panic, and
// a mapped scalar must agree with the variant's own accessors.
func FuzzVariant(f *testing.F) {
	for _, v := range []any{true, int8(-1), uint16(7), int32(-5), uint64(9), float32(1.5), 2.5, "s", []byte{1},
		time.Unix(1, 0), ua.NewNumericNodeID(1, 2), ua.StatusBadTimeout, []int32{1, 2}, []string{"a"}, ua.NewLocalizedText("x"),
		&ua.QualifiedName{Name: "q"}, ua.NewGUID("72962B91-FA75-4AE6-8D28-B404DC7DAF63")} {
		b, err := ua.MustVariant(v).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xc6, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0}) // 2x2 Int32 matrix
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := decodeVariant(b)
		if !ok {
			return
		}
		got, ok := toValue(v)
		if !ok {
			return
		}
		switch x := v.Value().(type) {
		case int32:
			if got.AsInt() != int64(x) {
				t.Fatalf("int32 %d → %v", x, got)
			}
		case uint64:
			if got.AsUint() != x {
				t.Fatalf("uint64 %d → %v", x, got)
			}
		case float64:
			if !got.Equal(model.Float(x)) {
				t.Fatalf("double %v → %v", x, got)
			}
		case string:
			if got.AsString() != x {
				t.Fatalf("string %q → %v", x, got)
			}
		}
		if v.ArrayLength() > 0 && got.Kind() == model.KindArray && len(v.ArrayDimensions()) < 2 && int32(len(got.Elems())) != v.ArrayLength() {
			t.Fatalf("array of %d → %d elements", v.ArrayLength(), len(got.Elems()))
		}
	})
}

func BenchmarkSampleDouble(b *testing.B) {
	s := &Source{}
	it := &item{path: "a/b"}
	dvs := make([]*ua.DataValue, 1024)
	for i := range dvs {
		dvs[i] = &ua.DataValue{Value: ua.MustVariant(float64(i)), SourceTimestamp: time.Unix(int64(i), 0)}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.sample(it, dvs[i%len(dvs)], 1, true)
	}
}

// decodeVariant decodes b, reporting false for invalid input. A panic is
// a failure: the patched decoder (internal/third_party/gopcua) must refuse
// every input with an error, as it runs in the connection's goroutine.
func decodeVariant(b []byte) (v *ua.Variant, ok bool) {
	v = new(ua.Variant)
	if _, err := v.Decode(b); err != nil {
		return nil, false
	}
	return v, true
}
