package sparkplugb

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/model"
)

// FuzzDecode feeds arbitrary bytes to Decode and every metric to ValueOf
// (with its own datatype and with each array datatype), checking that
// nothing panics and that a decoded payload re-encodes.
func FuzzDecode(f *testing.F) {
	seed := func(dt DataType, v model.Value) {
		m := &Metric{Name: proto.String("m"), Alias: proto.Uint64(1), Timestamp: proto.Uint64(1), Datatype: proto.Uint32(uint32(dt))}
		if err := SetValue(m, v, dt); err != nil {
			f.Fatal(err)
		}
		AddProperty(m, QualityProperty, Int32Property(QualityBad))
		b, err := Encode(&Payload{Timestamp: proto.Uint64(1), Seq: proto.Uint64(0), Metrics: []*Metric{m}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(DataType_Double, model.Float(1.5))
	seed(DataType_Int8, model.Int(-3))
	seed(DataType_String, model.String("x"))
	seed(DataType_BooleanArray, bools(true, false, true))
	seed(DataType_StringArray, strs("a", "b"))
	seed(DataType_Int32Array, ints(1, -1))
	// A template instance with a nested instance and a DataSet member.
	ds := &DataSet{NumOfColumns: proto.Uint64(2), Columns: []string{"a", "b"}, Types: []uint32{uint32(DataType_Int16), uint32(DataType_String)}}
	if err := AppendDataSetRow(ds, model.Int(-2), model.String("x")); err != nil {
		f.Fatal(err)
	}
	inner := &Metric{Name: proto.String("in"), Datatype: proto.Uint32(uint32(DataType_Template)),
		Value: &Payload_Metric_TemplateValue{TemplateValue: &Template{TemplateRef: proto.String("I"), Metrics: []*Metric{
			{Name: proto.String("v"), Datatype: proto.Uint32(uint32(DataType_Int8)), Value: &Payload_Metric_IntValue{IntValue: 0xff}},
		}}}}
	tmpl := &Metric{Name: proto.String("t"), Datatype: proto.Uint32(uint32(DataType_Template)),
		Value: &Payload_Metric_TemplateValue{TemplateValue: &Template{TemplateRef: proto.String("T"), Metrics: []*Metric{inner,
			{Name: proto.String("ds"), Datatype: proto.Uint32(uint32(DataType_DataSet)), Value: &Payload_Metric_DatasetValue{DatasetValue: ds}},
		}}}}
	if b, err := Encode(&Payload{Metrics: []*Metric{tmpl}}); err == nil {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x02, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			return
		}
		var visit func(ms []*Metric, depth int)
		visit = func(ms []*Metric, depth int) {
			for _, m := range ms {
				_, _ = ValueOf(m)
				for dt := DataType_Unknown; dt <= DataType_DateTimeArray+1; dt++ {
					_, _ = ValueAs(m, dt)
				}
				_, _ = PropertyInt(Property(m, QualityProperty))
				if cols, err := DataSetColumns(m.GetDatasetValue()); err == nil {
					for _, c := range cols {
						if c.Values.Kind() != model.KindArray {
							t.Fatalf("column %q: %s", c.Name, c.Values.Kind())
						}
					}
				}
				_ = IsTemplateDefinition(m)
				if depth < 16 {
					visit(m.GetTemplateValue().GetMetrics(), depth+1)
				}
			}
		}
		visit(p.GetMetrics(), 0)
		if _, err := Encode(p); err != nil {
			t.Fatalf("re-encode of a decoded payload: %v", err)
		}
	})
}

// FuzzParseTopic checks that ParseTopic never panics and that what it
// accepts formats back to the same string.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"spBv1.0/G/NBIRTH/E", "spBv1.0/G/DDATA/E/D", "spBv1.0/STATE/h", "STATE/h", "spBv1.0/G/NCMD/E", "a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTopic(s)
		if err != nil {
			return
		}
		if got := tp.String(); got != s {
			t.Fatalf("ParseTopic(%q).String() = %q", s, got)
		}
	})
}

// FuzzParseState checks that ParseState never panics and that accepted JSON
// states round-trip.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{`{"online":true,"timestamp":1}`, "ONLINE", "OFFLINE", `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseState(b)
		if err != nil || st.Legacy {
			return
		}
		back, err := ParseState(st.AppendJSON(nil))
		if err != nil || back != st {
			t.Fatalf("round trip of %+v: %+v, %v", st, back, err)
		}
	})
}
