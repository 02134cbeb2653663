package mqtt

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// complexMetric is edge.metric for a Template or DataSet value, which
// SetValue does not build: name, alias and datatype in a birth, alias only
// in data.
func (e *edge) complexMetric(key, name string, dt sparkplugb.DataType, v any, birth bool) *sparkplugb.Metric {
	e.t.Helper()
	m := e.metric(key, name, sparkplugb.DataType_Boolean, model.Bool(false), birth)
	if birth {
		m.Datatype = proto.Uint32(uint32(dt))
	}
	switch x := v.(type) {
	case *sparkplugb.Template:
		m.Value = &sparkplugb.Payload_Metric_TemplateValue{TemplateValue: x}
	case *sparkplugb.DataSet:
		m.Value = &sparkplugb.Payload_Metric_DatasetValue{DatasetValue: x}
	default:
		e.t.Fatalf("complexMetric: %T", v)
	}
	return m
}

// member is a scalar metric inside a template: always named (members are
// addressed by name), with its datatype in a birth only.
func member(t *testing.T, name string, dt sparkplugb.DataType, v model.Value, birth bool) *sparkplugb.Metric {
	t.Helper()
	m := &sparkplugb.Metric{Name: proto.String(name)}
	if birth {
		m.Datatype = proto.Uint32(uint32(dt))
	}
	if err := sparkplugb.SetValue(m, v, dt); err != nil {
		t.Fatal(err)
	}
	return m
}

// instance is a Template instance value; nested is the same as a member.
func instance(ref string, members ...*sparkplugb.Metric) *sparkplugb.Template {
	return &sparkplugb.Template{TemplateRef: proto.String(ref), Metrics: members}
}

func nested(name, ref string, birth bool, members ...*sparkplugb.Metric) *sparkplugb.Metric {
	m := &sparkplugb.Metric{Name: proto.String(name),
		Value: &sparkplugb.Payload_Metric_TemplateValue{TemplateValue: instance(ref, members...)}}
	if birth {
		m.Datatype = proto.Uint32(uint32(sparkplugb.DataType_Template))
	}
	return m
}

func definition(name string, members ...*sparkplugb.Metric) *sparkplugb.Metric {
	return &sparkplugb.Metric{Name: proto.String(name), Datatype: proto.Uint32(uint32(sparkplugb.DataType_Template)),
		Value: &sparkplugb.Payload_Metric_TemplateValue{TemplateValue: &sparkplugb.Template{IsDefinition: proto.Bool(true),
			Version: proto.String("1"), Metrics: members,
			Parameters: []*sparkplugb.Payload_Template_Parameter{{Name: proto.String("Unit"),
				Type: proto.Uint32(uint32(sparkplugb.DataType_String)), Value: &sparkplugb.Payload_Template_Parameter_StringValue{StringValue: "rpm"}}}}}}
}

func dataSet(t *testing.T, cols []string, types []sparkplugb.DataType, rows ...[]model.Value) *sparkplugb.DataSet {
	t.Helper()
	ds := &sparkplugb.DataSet{NumOfColumns: proto.Uint64(uint64(len(cols))), Columns: cols}
	for _, dt := range types {
		ds.Types = append(ds.Types, uint32(dt))
	}
	for _, r := range rows {
		if err := sparkplugb.AppendDataSetRow(ds, r...); err != nil {
			t.Fatal(err)
		}
	}
	return ds
}

func withQuality(m *sparkplugb.Metric, code int32) *sparkplugb.Metric {
	sparkplugb.AddProperty(m, sparkplugb.QualityProperty, sparkplugb.Int32Property(code))
	return m
}

// deepTemplate nests levels Template instances L1/L2/…, the innermost
// holding a scalar "v".
func deepTemplate(t *testing.T, levels int) *sparkplugb.Template {
	inner := []*sparkplugb.Metric{member(t, "v", sparkplugb.DataType_Int32, model.Int(1), true)}
	for i := levels - 1; i >= 1; i-- {
		inner = []*sparkplugb.Metric{nested(fmt.Sprintf("L%d", i), "Level", true, inner...)}
	}
	return instance("Level", inner...)
}

// motorBirths publishes the NBIRTH with the Motor and Status definitions
// (as Ignition sends UDT types) and a DBIRTH of device D1 with instance
// Motor1, whose Status member is itself an instance.
func motorBirths(t *testing.T, e *edge) {
	bool_, dbl, i16, str := sparkplugb.DataType_Boolean, sparkplugb.DataType_Double, sparkplugb.DataType_Int16, sparkplugb.DataType_String
	e.nbirth(
		definition("Status", member(t, "Running", bool_, model.Bool(false), true), member(t, "Code", i16, model.Int(0), true)),
		definition("Motor", member(t, "Speed", dbl, model.Float(0), true),
			&sparkplugb.Metric{Name: proto.String("Status"), Datatype: proto.Uint32(uint32(sparkplugb.DataType_Template)),
				Value: &sparkplugb.Payload_Metric_TemplateValue{TemplateValue: instance("Status")}},
			member(t, "Name", str, model.String(""), true)),
	)
	e.send(sparkplugb.DBIRTH, "D1", []*sparkplugb.Metric{e.complexMetric("motor", "Motor1", sparkplugb.DataType_Template,
		instance("Motor",
			member(t, "Speed", dbl, model.Float(1.5), true),
			nested("Status", "Status", true, member(t, "Running", bool_, model.Bool(true), true), member(t, "Code", i16, model.Int(-3), true)),
			member(t, "Name", str, model.String("m1"), true)), true)}, true)
}

// TestSparkplugComplexMetrics: Template instances are flattened into one
// tag per member, DataSets into one array tag per column; definitions are
// not data; malformed or hostile ones are counted errors that leave the
// rest of the payload alone.
func TestSparkplugComplexMetrics(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	out := newCollector()
	s := runSource(t, spConfig(b, "h-complex", false), out, withClock)
	b.WaitSubscribed(t, waitTimeout, 1)

	const ts0 = 1732568400000
	tsNs := func(ms uint64) int64 { return int64(ms) * 1e6 }
	good := model.Quality{}
	stale := model.Quality{Code: model.Bad, Reason: model.ReasonStale}
	null := model.Quality{Code: model.Bad, Reason: ReasonNull}
	i32, str, boolT := sparkplugb.DataType_Int32, sparkplugb.DataType_String, sparkplugb.DataType_Boolean
	type want struct {
		path string // after spBv1.0/G1/<node>/
		v    model.Value
		q    model.Quality
		ts   uint64 // ms; 0: ts0
	}
	tests := []struct {
		name string
		// run publishes; the samples of its last message are want, the
		// earlier messages yield before samples.
		run         func(t *testing.T, e *edge)
		before      int
		want        []want
		errors      uint64 // decode_errors
		unknown     uint64 // unknown_aliases
		rebirth     bool
		nodeMetrics float64 // gauge "metrics" of the node; 0: not checked
	}{
		{
			name: "definitions and nested instance in births",
			run:  motorBirths,
			want: []want{
				{"D1/Motor1/Speed", model.Float(1.5), good, 0},
				{"D1/Motor1/Status/Running", model.Bool(true), good, 0},
				{"D1/Motor1/Status/Code", model.Int(-3), good, 0},
				{"D1/Motor1/Name", model.String("m1"), good, 0},
			},
			nodeMetrics: 2 + 2 + 4, // bdSeq, Node Control/Rebirth, the two instances and the members; no definitions
		},
		{
			name: "partial template in DDATA",
			run: func(t *testing.T, e *edge) {
				motorBirths(t, e)
				e.ts = ts0 + 1000
				running := member(t, "Running", boolT, model.Bool(false), false)
				running.Timestamp = proto.Uint64(ts0 + 5000)
				m := e.complexMetric("motor", "", sparkplugb.DataType_Template, instance("",
					withQuality(member(t, "Speed", sparkplugb.DataType_Double, model.Float(2.5), false), sparkplugb.QualityGood),
					nested("Status", "", false, running)), false)
				m.Timestamp = proto.Uint64(ts0 + 2000)
				withQuality(m, sparkplugb.QualityStale)
				e.send(sparkplugb.DDATA, "D1", []*sparkplugb.Metric{m}, true)
			},
			before: 4,
			want: []want{
				{"D1/Motor1/Speed", model.Float(2.5), good, ts0 + 2000},
				{"D1/Motor1/Status/Running", model.Bool(false), model.Quality{Code: model.Uncertain, Reason: model.ReasonStale}, ts0 + 5000},
			},
		},
		{
			name: "unknown member asks for a rebirth",
			run: func(t *testing.T, e *edge) {
				motorBirths(t, e)
				e.send(sparkplugb.DDATA, "D1", []*sparkplugb.Metric{e.complexMetric("motor", "", sparkplugb.DataType_Template,
					instance("", member(t, "Bogus", i32, model.Int(1), false), member(t, "Speed", sparkplugb.DataType_Double, model.Float(3), false)),
					false)}, true)
			},
			before:  4,
			want:    []want{{"D1/Motor1/Speed", model.Float(3), good, 0}},
			unknown: 1,
			rebirth: true,
		},
		{
			name: "template members addressed by alias in DATA",
			run: func(t *testing.T, e *edge) {
				speed := member(t, "Speed", sparkplugb.DataType_Double, model.Float(1), true)
				speed.Alias = proto.Uint64(901)
				e.nbirth(e.complexMetric("pump", "Pump", sparkplugb.DataType_Template, instance("Pump", speed), true))
				byAlias := member(t, "", sparkplugb.DataType_Double, model.Float(4.5), false)
				byAlias.Name, byAlias.Alias = nil, proto.Uint64(901)
				e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{e.complexMetric("pump", "", sparkplugb.DataType_Template,
					instance("", byAlias), false)}, true)
			},
			before: 1,
			want:   []want{{"Pump/Speed", model.Float(4.5), good, 0}},
		},
		{
			name: "null template in a birth is refused, its DATA ignored without rebirths",
			run: func(t *testing.T, e *edge) {
				m := e.complexMetric("pump", "Pump", sparkplugb.DataType_Template, instance("Pump"), true)
				m.Value, m.IsNull = nil, proto.Bool(true)
				e.nbirth(m, e.metric("ok", "ok", i32, model.Int(7), true))
				e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{e.complexMetric("pump", "", sparkplugb.DataType_Template,
					instance("", member(t, "Speed", sparkplugb.DataType_Double, model.Float(1), false)), false)}, true)
			},
			want:   []want{{"ok", model.Int(7), good, 0}},
			errors: 1,
		},
		{
			name: "null template and DDEATH cover every member",
			run: func(t *testing.T, e *edge) {
				motorBirths(t, e)
				m := e.complexMetric("motor", "", sparkplugb.DataType_Template, instance(""), false)
				m.Value, m.IsNull = nil, proto.Bool(true)
				e.send(sparkplugb.DDATA, "D1", []*sparkplugb.Metric{m}, true)
				e.send(sparkplugb.DDEATH, "D1", nil, true)
			},
			before: 8,
			want: []want{ // name order
				{"D1/Motor1/Name", model.Value{}, stale, 0},
				{"D1/Motor1/Speed", model.Value{}, stale, 0},
				{"D1/Motor1/Status/Code", model.Value{}, stale, 0},
				{"D1/Motor1/Status/Running", model.Value{}, stale, 0},
			},
		},
		{
			name: "nesting at the limit",
			run: func(t *testing.T, e *edge) {
				e.nbirth(e.complexMetric("deep", "Deep", sparkplugb.DataType_Template, deepTemplate(t, maxTemplateDepth), true))
			},
			want:        []want{{"Deep" + levelsPath(maxTemplateDepth) + "/v", model.Int(1), good, 0}},
			nodeMetrics: 2 + maxTemplateDepth + 1, // every level is a registry entry
		},
		{
			name: "nesting too deep",
			run: func(t *testing.T, e *edge) {
				e.nbirth(e.complexMetric("deep", "Deep", sparkplugb.DataType_Template, deepTemplate(t, maxTemplateDepth+1), true),
					e.metric("ok", "ok", i32, model.Int(7), true))
			},
			want:        []want{{"ok", model.Int(7), good, 0}},
			errors:      1,
			nodeMetrics: 2 + 1 + 1, // the refused template stays registered, alone
		},
		{
			name: "DataSet in NBIRTH and NDATA",
			run: func(t *testing.T, e *edge) {
				cols, types := []string{"id", "name", "ok"}, []sparkplugb.DataType{i32, str, boolT}
				e.nbirth(e.complexMetric("table", "Table", sparkplugb.DataType_DataSet, dataSet(t, cols, types,
					[]model.Value{model.Int(1), model.String("a"), model.Bool(true)},
					[]model.Value{model.Int(-2), model.String("b"), model.Bool(false)}), true))
				e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{e.complexMetric("table", "", 0, dataSet(t, cols, types,
					[]model.Value{model.Int(3), model.String("c"), model.Bool(true)}), false)}, true)
			},
			before: 3,
			want: []want{
				{"Table/id", ints(3), good, 0},
				{"Table/name", model.Array([]model.Value{model.String("c")}), good, 0},
				{"Table/ok", model.Array([]model.Value{model.Bool(true)}), good, 0},
			},
			nodeMetrics: 2 + 1 + 3, // the DataSet and its columns
		},
		{
			name: "DataSet member of a template",
			run: func(t *testing.T, e *edge) {
				e.nbirth(e.complexMetric("m", "M", sparkplugb.DataType_Template, instance("T",
					&sparkplugb.Metric{Name: proto.String("Log"), Datatype: proto.Uint32(uint32(sparkplugb.DataType_DataSet)),
						Value: &sparkplugb.Payload_Metric_DatasetValue{DatasetValue: dataSet(t, []string{"n"}, []sparkplugb.DataType{sparkplugb.DataType_UInt8},
							[]model.Value{model.Uint(200)}, []model.Value{model.Uint(7)})}}), true))
			},
			want: []want{{"M/Log/n", u(200, 7), good, 0}},
		},
		{
			name: "bad DataSets are errors, the other metrics still come",
			run: func(t *testing.T, e *edge) {
				cols, types := []string{"a", "b"}, []sparkplugb.DataType{i32, str}
				e.nbirth(e.complexMetric("t", "T", sparkplugb.DataType_DataSet, dataSet(t, cols, types, []model.Value{model.Int(1), model.String("x")}), true),
					e.metric("x", "x", i32, model.Int(0), true))
				short := dataSet(t, cols, types, []model.Value{model.Int(1), model.String("x")})
				short.Rows[0].Elements = short.Rows[0].Elements[:1]
				e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{e.complexMetric("t", "", 0, short, false), e.metric("x", "", i32, model.Int(1), false)}, true)
				mistyped := dataSet(t, cols, types, []model.Value{model.Int(1), model.String("x")})
				mistyped.Rows[0].Elements[1] = &sparkplugb.DataSetValue{Value: &sparkplugb.Payload_DataSet_DataSetValue_BooleanValue{BooleanValue: true}}
				e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{e.complexMetric("t", "", 0, mistyped, false), e.metric("x", "", i32, model.Int(2), false)}, true)
			},
			before: 4,
			want:   []want{{"x", model.Int(2), good, 0}},
			errors: 2,
		},
		{
			name: "null DataSet",
			run: func(t *testing.T, e *edge) {
				e.nbirth(e.complexMetric("t", "T", sparkplugb.DataType_DataSet, dataSet(t, []string{"a"}, []sparkplugb.DataType{i32}), true))
				m := e.complexMetric("t", "", 0, dataSet(t, nil, nil), false)
				m.Value, m.IsNull = nil, proto.Bool(true)
				e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{m}, true)
			},
			before: 1,
			want:   []want{{"T/a", model.Value{}, null, 0}},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := fmt.Sprintf("E%d", i)
			e := newEdge(t, b, "G1", node)
			st0 := s.Status()
			n0 := len(out.snapshot())
			tt.run(t, e)
			got := out.waitN(t, n0+tt.before+len(tt.want))[n0:]
			if len(got) != tt.before+len(tt.want) {
				t.Fatalf("%d samples, want %d + %d:\n%s", len(got), tt.before, len(tt.want), dumpSamples(got))
			}
			for j, w := range tt.want {
				g := got[tt.before+j]
				ts := w.ts
				if ts == 0 {
					ts = ts0
				}
				path := "spBv1.0/G1/" + node + "/" + w.path
				// Stale marks carry the death's time as edge time too.
				if g.Path != path || !g.Value.Equal(w.v) || g.Quality != w.q || g.SourceTime != tsNs(ts) ||
					(w.q != stale && g.EdgeTime != fixedClock.UnixNano()) {
					t.Errorf("sample %d: got %s = %#v (%s) ts=%d, want %s = %#v (%s) ts=%d", j, g.Path, g.Value, g.Quality, g.SourceTime,
						path, w.v, w.q, tsNs(ts))
				}
			}
			st := s.Status()
			if d := st.Counters["decode_errors"] - st0.Counters["decode_errors"]; d != tt.errors {
				t.Errorf("decode_errors +%d, want +%d", d, tt.errors)
			}
			if d := st.Counters["unknown_aliases"] - st0.Counters["unknown_aliases"]; d != tt.unknown {
				t.Errorf("unknown_aliases +%d, want +%d", d, tt.unknown)
			}
			var child *struct {
				rebirths float64
				metrics  float64
			}
			for _, c := range st.Children {
				if c.Name == "G1/"+node {
					child = &struct{ rebirths, metrics float64 }{float64(c.Counters["rebirth_requests"]), c.Gauges["metrics"]}
				}
			}
			if child == nil {
				t.Fatalf("no status child G1/%s", node)
			}
			if tt.nodeMetrics != 0 && child.metrics != tt.nodeMetrics {
				t.Errorf("metrics gauge %v, want %v", child.metrics, tt.nodeMetrics)
			}
			ncmd := "spBv1.0/G1/NCMD/" + node
			if tt.rebirth {
				rebirths(t, b.WaitFor(t, waitTimeout, "NCMD rebirth", func(m []mqtttest.Message) bool { return len(mqtttest.On(m, ncmd)) >= 1 }), ncmd)
			} else if child.rebirths != 0 {
				t.Errorf("%v rebirth requests, want none", child.rebirths)
			}
		})
	}
	for _, tag := range s.Tags() {
		if strings.HasSuffix(tag.Path, "/Motor") || strings.HasSuffix(tag.Path, "/Status") {
			t.Errorf("template definition or instance itself listed as a tag: %s", tag.Path)
		}
	}
}

func levelsPath(levels int) string {
	var b strings.Builder
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "/L%d", i)
	}
	return b.String()
}

// newTestHost is a host application driven directly, without a broker, for
// limits whose payloads are too large to be worth publishing.
func newTestHost() *spHost {
	h := newSPHost(SparkplugConfig{GroupIDs: []string{"+"}, HostID: "h", PathPrefix: new(string),
		RebirthInterval: time.Second, QoS: new(int)}, slog.New(slog.DiscardHandler))
	h.connected(1, func(outMsg) bool { return true }, time.Unix(1, 0))
	return h
}

// TestSparkplugComplexLimits: hostile templates and DataSets give an error
// naming the problem and no samples for that metric, never a panic; the
// other metrics of the payload still come, and later DATA for a refused
// metric is neither emitted nor an unknown alias. The node's tag budget
// is pre-filled to just below maxMetricsPerNode so that the payloads stay
// small.
func TestSparkplugComplexLimits(t *testing.T) {
	const room = 2 * maxTemplateDepth // enough for the deep template's levels before its depth error
	members := make([]*sparkplugb.Metric, room+1)
	for i := range members {
		members[i] = member(t, fmt.Sprintf("m%d", i), sparkplugb.DataType_Boolean, model.Bool(true), true)
	}
	cols := make([]string, room+1)
	types := make([]sparkplugb.DataType, room+1)
	for i := range cols {
		cols[i], types[i] = fmt.Sprintf("c%d", i), sparkplugb.DataType_Int32
	}
	bigDS := &sparkplugb.DataSet{Columns: []string{"a", "b"}, Types: []uint32{uint32(sparkplugb.DataType_Int32), uint32(sparkplugb.DataType_Int32)}}
	row := &sparkplugb.Payload_DataSet_Row{Elements: []*sparkplugb.DataSetValue{
		{Value: &sparkplugb.Payload_DataSet_DataSetValue_IntValue{IntValue: 1}},
		{Value: &sparkplugb.Payload_DataSet_DataSetValue_IntValue{IntValue: 2}}}}
	for range sparkplugb.MaxDataSetElems/2 + 1 {
		bigDS.Rows = append(bigDS.Rows, row)
	}
	named := func(name string, dt sparkplugb.DataType, v any) *sparkplugb.Metric {
		m := &sparkplugb.Metric{Name: proto.String(name), Alias: proto.Uint64(1), Datatype: proto.Uint32(uint32(dt))}
		switch x := v.(type) {
		case *sparkplugb.Template:
			m.Value = &sparkplugb.Payload_Metric_TemplateValue{TemplateValue: x}
		case *sparkplugb.DataSet:
			m.Value = &sparkplugb.Payload_Metric_DatasetValue{DatasetValue: x}
		case *sparkplugb.Payload_Metric_MetricValueExtension:
			// The schema has no PropertySet field in Metric's value.
			m.Value = &sparkplugb.Payload_Metric_ExtensionValue{ExtensionValue: x}
		}
		return m
	}
	tests := []struct {
		name  string
		bad   *sparkplugb.Metric
		want  string
		added int // registry entries the DBIRTH adds to the node's count: the refused metric and ok
	}{
		{"too many members", named("Big", sparkplugb.DataType_Template, instance("Big", members...)), "more than 100000 metrics", 2},
		{"too many columns", named("Wide", sparkplugb.DataType_DataSet, dataSet(t, cols, types)), "more than 100000 metrics", 2},
		{"too deep", named("Deep", sparkplugb.DataType_Template, deepTemplate(t, maxTemplateDepth+1)), "nested deeper than 16 levels", 2},
		{"too many cells", named("DS", sparkplugb.DataType_DataSet, bigDS), "exceed the limit of 100000 cells", 2},
		{"property set", named("PS", sparkplugb.DataType_PropertySet, &sparkplugb.Payload_Metric_MetricValueExtension{}), "unsupported datatype PropertySet", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHost()
			now := time.Unix(2, 0)
			nbirth, _ := sparkplugb.Encode(&sparkplugb.Payload{Seq: proto.Uint64(0)})
			if _, err := h.handle(nil, "spBv1.0/G/NBIRTH/E", nbirth, now); err != nil {
				t.Fatal(err)
			}
			n := h.nodes["G/E"]
			n.count = maxMetricsPerNode - room
			ok := member(t, "ok", sparkplugb.DataType_Int32, model.Int(5), true)
			dbirth, _ := sparkplugb.Encode(&sparkplugb.Payload{Seq: proto.Uint64(1), Metrics: []*sparkplugb.Metric{tt.bad, ok}})
			out, err := h.handle(nil, "spBv1.0/G/DBIRTH/E/D", dbirth, now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if len(out) != 1 || out[0].Path != "G/E/D/ok" {
				t.Fatalf("want only the other metric:\n%s", dumpSamples(out))
			}
			if n.count != maxMetricsPerNode-room+tt.added {
				t.Fatalf("node count %d, want %d", n.count, maxMetricsPerNode-room+tt.added)
			}
			data, _ := sparkplugb.Encode(&sparkplugb.Payload{Seq: proto.Uint64(2), Metrics: []*sparkplugb.Metric{
				{Alias: proto.Uint64(1), Value: tt.bad.Value}}})
			out, _ = h.handle(out[:0], "spBv1.0/G/DDATA/E/D", data, now)
			if len(out) != 0 || h.unknownAliases.Load() != 0 || h.rebirthRequests.Load() != 0 {
				t.Fatalf("DATA of a refused metric: %d samples, %d unknown, %d rebirths", len(out),
					h.unknownAliases.Load(), h.rebirthRequests.Load())
			}
		})
	}
}
