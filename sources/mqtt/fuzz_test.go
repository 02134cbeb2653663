package mqtt

import (
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

func checkPaths(t *testing.T, out []model.Sample) {
	t.Helper()
	for _, s := range out {
		if err := model.ValidatePath(s.Path); err != nil {
			t.Fatalf("emitted an invalid path: %v", err)
		}
	}
}

// FuzzJSONMapper feeds arbitrary topics and payloads to a json route with
// a value selector, a timestamp and one with fields: it must never panic,
// and whatever it emits has a valid path.
func FuzzJSONMapper(f *testing.F) {
	f.Add("plant/p1/line/l2/temp", []byte(`{"data":{"value":42,"arr":[1,2.5]},"ts":1732568400123}`))
	f.Add("plant/p1/line/x", []byte(`{"data":{"value":null},"ts":"1732568400.5"}`))
	f.Add("plant/+/line/#", []byte(`[{"a":1e999}]`))
	f.Add("plant//line/", []byte("\xff\x00{"))
	routes := []*route{
		mustRoute(f, SubscriptionConfig{Topic: "plant/+/line/#", Path: "acme/{1}/{3+}",
			JSON: JSONConfig{Value: "$.data.value", Timestamp: "$.ts"}}),
		mustRoute(f, SubscriptionConfig{Topic: "plant/#", StripPrefix: "plant/", JSON: JSONConfig{Timestamp: "$.ts", TimestampUnit: "s",
			Fields: []FieldConfig{{Name: "v", Value: "$.data.value"}, {Name: "a", Value: "$.data.arr"}, {Name: "x", Value: "$[0].a"}}}}),
		mustRoute(f, SubscriptionConfig{Topic: "plant/#", JSON: JSONConfig{Timestamp: "$.ts", TimestampUnit: "rfc3339"}}),
		mustRoute(f, SubscriptionConfig{Topic: "plant/#", Format: FormatRaw}),
		mustRoute(f, SubscriptionConfig{Topic: "plant/#", Format: FormatWeir}),
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		for _, r := range routes {
			out, _ := r.decode(nil, topic, payload, 1)
			checkPaths(t, out)
		}
	})
}

// FuzzConfigStrings: selectors and path templates come from configuration
// files; parsing them must never panic.
func FuzzConfigStrings(f *testing.F) {
	f.Add(`$.a["b.c"][0].d`, "acme/{1}/{3+}/{topic}")
	f.Add("$[", "{")
	f.Fuzz(func(t *testing.T, sel, tmpl string) {
		if s, err := parseSelector(sel); err == nil {
			s.get(map[string]any{"a": []any{1}})
		}
		if tm, err := parseTemplate(tmpl); err == nil {
			_, _ = tm.render("a/b/c")
		}
		_, _ = parseFilter(sel)
		_ = prefixCanMatch("a/+/#", tmpl)
	})
}

// spSeed builds valid Sparkplug payloads for the fuzz corpus.
func spSeed(f *testing.F, seq uint64, metrics ...*sparkplugb.Metric) []byte {
	b, err := sparkplugb.Encode(&sparkplugb.Payload{Timestamp: proto.Uint64(1), Seq: proto.Uint64(seq), Metrics: metrics})
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzSparkplug drives the host application with a valid NBIRTH and DBIRTH
// followed by an arbitrary message: decoding, alias resolution, seq and
// death handling must never panic and only emit valid paths.
func FuzzSparkplug(f *testing.F) {
	metric := func(name string, alias uint64, dt sparkplugb.DataType, v model.Value) *sparkplugb.Metric {
		m := &sparkplugb.Metric{Alias: proto.Uint64(alias), Datatype: proto.Uint32(uint32(dt))}
		if name != "" {
			m.Name = proto.String(name)
		}
		_ = sparkplugb.SetValue(m, v, dt)
		return m
	}
	complexM := func(name string, alias uint64, v any) *sparkplugb.Metric {
		m := &sparkplugb.Metric{Alias: proto.Uint64(alias)}
		if name != "" {
			m.Name = proto.String(name)
		}
		switch x := v.(type) {
		case *sparkplugb.Template:
			m.Value = &sparkplugb.Payload_Metric_TemplateValue{TemplateValue: x}
			if name != "" {
				m.Datatype = proto.Uint32(uint32(sparkplugb.DataType_Template))
			}
		case *sparkplugb.DataSet:
			m.Value = &sparkplugb.Payload_Metric_DatasetValue{DatasetValue: x}
			if name != "" {
				m.Datatype = proto.Uint32(uint32(sparkplugb.DataType_DataSet))
			}
		}
		return m
	}
	tmpl := func(ref string, def bool, members ...*sparkplugb.Metric) *sparkplugb.Template {
		return &sparkplugb.Template{TemplateRef: proto.String(ref), IsDefinition: proto.Bool(def), Metrics: members}
	}
	table := func(rows ...[]model.Value) *sparkplugb.DataSet {
		ds := &sparkplugb.DataSet{NumOfColumns: proto.Uint64(2), Columns: []string{"n", "s"},
			Types: []uint32{uint32(sparkplugb.DataType_Int16), uint32(sparkplugb.DataType_String)}}
		for _, r := range rows {
			if err := sparkplugb.AppendDataSetRow(ds, r...); err != nil {
				f.Fatal(err)
			}
		}
		return ds
	}
	row := []model.Value{model.Int(-1), model.String("x")}
	// The births hold a template definition, an instance with a nested
	// instance and a DataSet member, and a DataSet, so that arbitrary DATA
	// reaches the flattening.
	nbirth := spSeed(f, 0, metric("bdSeq", 0, sparkplugb.DataType_Int64, model.Int(3)), metric("a", 1, sparkplugb.DataType_Int32, model.Int(1)),
		complexM("T", 0, tmpl("", true, metric("v", 0, sparkplugb.DataType_Int8, model.Int(0)))),
		complexM("tab", 4, table(row, row)))
	dbirth := spSeed(f, 1, metric("x/y", 2, sparkplugb.DataType_DoubleArray, model.Array([]model.Value{model.Float(1)})),
		metric("s", 3, sparkplugb.DataType_String, model.String("s")),
		complexM("inst", 5, tmpl("T", false, metric("v", 0, sparkplugb.DataType_Int8, model.Int(1)),
			complexM("in", 0, tmpl("U", false, metric("w", 0, sparkplugb.DataType_Boolean, model.Bool(true)))),
			complexM("ds", 0, table(row)))))
	f.Add("spBv1.0/G/DDATA/E/D", spSeed(f, 2, complexM("", 5, tmpl("", false,
		complexM("in", 0, tmpl("", false, metric("w", 0, sparkplugb.DataType_Boolean, model.Bool(false)))),
		metric("zz", 0, sparkplugb.DataType_Int32, model.Int(1))))))
	f.Add("spBv1.0/G/NDATA/E", spSeed(f, 2, complexM("", 4, table(row, row, row))))
	f.Add("spBv1.0/G/DBIRTH/E/D", spSeed(f, 2, complexM("deep", 6, tmpl("T", false, complexM("a", 0, tmpl("T", false,
		complexM("b", 0, tmpl("T", false, metric("c", 0, sparkplugb.DataType_UInt64, model.Uint(1))))))))))
	f.Add("spBv1.0/G/DDATA/E/D", spSeed(f, 2, metric("", 2, sparkplugb.DataType_Unknown, model.Float(2)), metric("", 3, sparkplugb.DataType_Int8, model.Int(1))))
	f.Add("spBv1.0/G/NDATA/E", spSeed(f, 9, metric("", 77, sparkplugb.DataType_Bytes, model.Array(nil))))
	f.Add("spBv1.0/G/NDEATH/E", spSeed(f, 0, metric("bdSeq", 0, sparkplugb.DataType_Int64, model.Int(3))))
	f.Add("spBv1.0/G/DBIRTH/E/D", spSeed(f, 2, metric("", 0, sparkplugb.DataType_Template, model.Value{})))
	f.Add("spBv1.0/G/NBIRTH/E", nbirth)
	f.Add("spBv1.0/STATE/h", []byte(`{"online":false,"timestamp":0}`))
	f.Add("spBv1.0/G/DDEATH/E/D", []byte{0x18, 0x02})
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		h := newSPHost(SparkplugConfig{GroupIDs: []string{"+"}, HostID: "h", PublishState: true, PathPrefix: new(string),
			RebirthInterval: time.Second, QoS: new(int)}, slog.New(slog.DiscardHandler))
		h.connected(1, func(outMsg) bool { return true }, time.Unix(1, 0))
		now := time.Unix(2, 0)
		var out []model.Sample
		out, _ = h.handle(out, "spBv1.0/G/NBIRTH/E", nbirth, now)
		out, _ = h.handle(out, "spBv1.0/G/DBIRTH/E/D", dbirth, now)
		out, _ = h.handle(out, topic, payload, now)
		out, _ = h.handle(out, topic, payload, now) // twice: state after the first must hold up
		out = h.disconnected(out, 3)
		checkPaths(t, out)
	})
}
