package mqtt

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// typedValue is one metric of the datatype table: what goes on the wire
// and what must come out.
type typedValue struct {
	name string
	dt   sparkplugb.DataType
	v    model.Value
}

func u(xs ...uint64) model.Value {
	out := make([]model.Value, len(xs))
	for i, x := range xs {
		out[i] = model.Uint(x)
	}
	return model.Array(out)
}

func ints(xs ...int64) model.Value {
	out := make([]model.Value, len(xs))
	for i, x := range xs {
		out[i] = model.Int(x)
	}
	return model.Array(out)
}

// allTypes covers every datatype Weir converts, with values at the edges
// of each width. Floats are exactly representable in float32.
func allTypes() []typedValue {
	return []typedValue{
		{"i8", sparkplugb.DataType_Int8, model.Int(-128)},
		{"i16", sparkplugb.DataType_Int16, model.Int(-32768)},
		{"i32", sparkplugb.DataType_Int32, model.Int(math.MinInt32)},
		{"i64", sparkplugb.DataType_Int64, model.Int(math.MinInt64)},
		{"u8", sparkplugb.DataType_UInt8, model.Uint(255)},
		{"u16", sparkplugb.DataType_UInt16, model.Uint(65535)},
		{"u32", sparkplugb.DataType_UInt32, model.Uint(math.MaxUint32)},
		{"u64", sparkplugb.DataType_UInt64, model.Uint(math.MaxUint64)},
		{"f32", sparkplugb.DataType_Float, model.Float(-1.5)},
		{"f64", sparkplugb.DataType_Double, model.Float(math.Pi)},
		{"bool", sparkplugb.DataType_Boolean, model.Bool(true)},
		{"str", sparkplugb.DataType_String, model.String("héllo ✓")},
		{"text", sparkplugb.DataType_Text, model.String("long\ntext")},
		{"uuid", sparkplugb.DataType_UUID, model.String("123e4567-e89b-12d3-a456-426614174000")},
		{"dt", sparkplugb.DataType_DateTime, model.Int(1732568400123)},
		{"bytes", sparkplugb.DataType_Bytes, u(0, 1, 255)},
		{"i8a", sparkplugb.DataType_Int8Array, ints(-128, 0, 127)},
		{"i16a", sparkplugb.DataType_Int16Array, ints(-32768, 32767)},
		{"i32a", sparkplugb.DataType_Int32Array, ints(123456789, -987654321)},
		{"i64a", sparkplugb.DataType_Int64Array, ints(math.MinInt64, math.MaxInt64)},
		{"u8a", sparkplugb.DataType_UInt8Array, u(0, 255)},
		{"u16a", sparkplugb.DataType_UInt16Array, u(0, 65535)},
		{"u32a", sparkplugb.DataType_UInt32Array, u(0, math.MaxUint32)},
		{"u64a", sparkplugb.DataType_UInt64Array, u(0, math.MaxUint64)},
		{"f32a", sparkplugb.DataType_FloatArray, model.Array([]model.Value{model.Float(0.5), model.Float(-2)})},
		{"f64a", sparkplugb.DataType_DoubleArray, model.Array([]model.Value{model.Float(math.E), model.Float(1e300)})},
		{"boola", sparkplugb.DataType_BooleanArray, model.Array([]model.Value{model.Bool(true), model.Bool(false), model.Bool(true)})},
		{"stra", sparkplugb.DataType_StringArray, model.Array([]model.Value{model.String("a"), model.String("")})},
		{"dta", sparkplugb.DataType_DateTimeArray, ints(0, 1732568400123)},
		{"folder/with/slashes", sparkplugb.DataType_Int32, model.Int(7)},
	}
}

// edge builds and publishes Sparkplug messages of one edge node through the
// broker's inline client.
type edge struct {
	t            *testing.T
	b            *mqtttest.Broker
	group, node  string
	seq          uint64
	ts           uint64
	alias        map[string]uint64
	bdSeq        int64
	nextAliasVal uint64
}

func newEdge(t *testing.T, b *mqtttest.Broker, group, node string) *edge {
	return &edge{t: t, b: b, group: group, node: node, ts: 1732568400000, alias: map[string]uint64{}, nextAliasVal: 1}
}

func (e *edge) topic(mt sparkplugb.MessageType, device string) string {
	return sparkplugb.Topic{Namespace: sparkplugb.Namespace, Group: e.group, Type: mt, EdgeNode: e.node, Device: device}.String()
}

// metric builds a metric with value v of datatype dt; birth metrics carry
// name, alias and datatype, data metrics the alias only.
func (e *edge) metric(key, name string, dt sparkplugb.DataType, v model.Value, birth bool) *sparkplugb.Metric {
	e.t.Helper()
	m := &sparkplugb.Metric{Timestamp: proto.Uint64(e.ts)}
	if birth {
		a, ok := e.alias[key]
		if !ok {
			a = e.nextAliasVal
			e.nextAliasVal++
			e.alias[key] = a
		}
		m.Name, m.Alias, m.Datatype = proto.String(name), proto.Uint64(a), proto.Uint32(uint32(dt))
	} else {
		m.Alias = proto.Uint64(e.alias[key])
	}
	if err := sparkplugb.SetValue(m, v, dt); err != nil {
		e.t.Fatalf("SetValue %s: %v", name, err)
	}
	return m
}

func (e *edge) send(mt sparkplugb.MessageType, device string, metrics []*sparkplugb.Metric, withSeq bool) {
	e.t.Helper()
	p := &sparkplugb.Payload{Timestamp: proto.Uint64(e.ts), Metrics: metrics}
	if withSeq {
		p.Seq = proto.Uint64(e.seq % 256)
		e.seq++
	}
	data, err := sparkplugb.Encode(p)
	if err != nil {
		e.t.Fatal(err)
	}
	e.b.Publish(e.t, e.topic(mt, device), data, 0, false)
}

func (e *edge) nbirth(metrics ...*sparkplugb.Metric) {
	e.seq = 0
	bd := &sparkplugb.Metric{Name: proto.String(sparkplugb.MetricBdSeq), Datatype: proto.Uint32(uint32(sparkplugb.DataType_Int64))}
	_ = sparkplugb.SetValue(bd, model.Int(e.bdSeq), sparkplugb.DataType_Int64)
	rb := &sparkplugb.Metric{Name: proto.String(sparkplugb.MetricRebirth), Datatype: proto.Uint32(uint32(sparkplugb.DataType_Boolean))}
	_ = sparkplugb.SetValue(rb, model.Bool(false), sparkplugb.DataType_Boolean)
	e.send(sparkplugb.NBIRTH, "", append([]*sparkplugb.Metric{bd, rb}, metrics...), true)
}

func (e *edge) ndeath(bdSeq int64) {
	bd := &sparkplugb.Metric{Name: proto.String(sparkplugb.MetricBdSeq), Datatype: proto.Uint32(uint32(sparkplugb.DataType_Int64))}
	_ = sparkplugb.SetValue(bd, model.Int(bdSeq), sparkplugb.DataType_Int64)
	e.send(sparkplugb.NDEATH, "", []*sparkplugb.Metric{bd}, false)
}

func spConfig(b *mqtttest.Broker, id string, publishState bool) Config {
	return Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: id}, Sparkplug: &SparkplugConfig{
		GroupIDs: []string{"G1"}, HostID: id, PublishState: publishState, RebirthInterval: time.Hour}}
}

// rebirths returns the NCMD rebirth requests the broker saw for node.
func rebirths(t *testing.T, msgs []mqtttest.Message, topic string) int {
	t.Helper()
	n := 0
	for _, m := range mqtttest.On(msgs, topic) {
		p, err := sparkplugb.Decode(m.Payload)
		if err != nil {
			t.Fatalf("NCMD payload: %v", err)
		}
		rb := sparkplugb.FindMetric(p, sparkplugb.MetricRebirth)
		if rb == nil || !rb.GetBooleanValue() || p.Timestamp == nil {
			t.Fatalf("NCMD is not a rebirth request: %v", p)
		}
		n++
	}
	return n
}

// TestSparkplugAllDatatypes: NBIRTH and DBIRTH give names, aliases and
// datatypes; NDATA/DDATA with aliases only resolve to the same tags, and
// every datatype's value comes out exact.
func TestSparkplugAllDatatypes(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	out := newCollector()
	s := runSource(t, spConfig(b, "h-types", false), out, withClock)
	b.WaitSubscribed(t, waitTimeout, 1)
	e := newEdge(t, b, "G1", "E1")
	types := allTypes()

	var nb, db []*sparkplugb.Metric
	for _, tv := range types {
		nb = append(nb, e.metric("n/"+tv.name, tv.name, tv.dt, tv.v, true))
		db = append(db, e.metric("d/"+tv.name, tv.name, tv.dt, tv.v, true))
	}
	e.nbirth(nb...)
	e.send(sparkplugb.DBIRTH, "D1", db, true)
	births := out.waitN(t, 2*len(types))

	// Data: alias only, no datatype, one message per kind of message.
	e.ts += 1000
	var nd, dd []*sparkplugb.Metric
	for _, tv := range types {
		nd = append(nd, e.metric("n/"+tv.name, tv.name, tv.dt, tv.v, false))
		dd = append(dd, e.metric("d/"+tv.name, tv.name, tv.dt, tv.v, false))
	}
	e.send(sparkplugb.NDATA, "", nd, true)
	e.send(sparkplugb.DDATA, "D1", dd, true)
	all := out.waitN(t, 4*len(types))

	check := func(label string, got []model.Sample, base string, ts uint64) {
		t.Helper()
		for i, tv := range types {
			g := got[i]
			if g.Path != base+"/"+tv.name || !g.Value.Equal(tv.v) || !g.Quality.IsGood() ||
				g.SourceTime != int64(ts)*1e6 || g.EdgeTime != fixedClock.UnixNano() || g.Historical {
				t.Errorf("%s %s: got %s = %#v (%s) ts=%d", label, tv.name, g.Path, g.Value, g.Quality, g.SourceTime)
			}
		}
	}
	n := len(types)
	check("NBIRTH", births[:n], "spBv1.0/G1/E1", e.ts-1000)
	check("DBIRTH", births[n:2*n], "spBv1.0/G1/E1/D1", e.ts-1000)
	check("NDATA", all[2*n:3*n], "spBv1.0/G1/E1", e.ts)
	check("DDATA", all[3*n:], "spBv1.0/G1/E1/D1", e.ts)

	st := s.Status()
	if st.Counters["seq_gaps"] != 0 || st.Counters["unknown_aliases"] != 0 || st.Counters["rebirth_requests"] != 0 ||
		st.Counters["decode_errors"] != 0 {
		t.Fatalf("counters %+v", st.Counters)
	}
	if len(st.Children) != 1 || st.Children[0].Name != "G1/E1" || st.Children[0].State != "online" ||
		st.Children[0].Gauges["devices_online"] != 1 {
		t.Fatalf("children %+v", st.Children)
	}
	tags := s.Tags()
	if len(tags) != 2*n {
		t.Fatalf("Tags: %d, want %d (control metrics excluded)", len(tags), 2*n)
	}
}

// TestSparkplugRebirthTriggers: a seq gap, an unknown alias and data
// before any birth each make the host publish NCMD Node Control/Rebirth,
// at most once per rebirth_interval per edge node.
func TestSparkplugRebirthTriggers(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	ncmd := "spBv1.0/G1/NCMD/E1"

	t.Run("seq gap", func(t *testing.T) {
		out := newCollector()
		s := runSource(t, spConfig(b, "h-gap", false), out)
		b.WaitSubscribed(t, waitTimeout, 1)
		e := newEdge(t, b, "G1", "E1")
		e.nbirth(e.metric("a", "a", sparkplugb.DataType_Int32, model.Int(1), true))
		out.waitN(t, 1)
		e.seq += 3 // three messages lost
		e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{e.metric("a", "a", sparkplugb.DataType_Int32, model.Int(2), false)}, true)
		b.WaitFor(t, waitTimeout, "NCMD rebirth", func(m []mqtttest.Message) bool { return len(mqtttest.On(m, ncmd)) >= 1 })
		got := out.waitN(t, 2)
		if got[1].Value.AsInt() != 2 {
			t.Fatalf("data after a gap must still be emitted: %s", dumpSamples(got))
		}
		// A second gap within rebirth_interval: counted, no second NCMD.
		e.seq += 5
		e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{e.metric("a", "a", sparkplugb.DataType_Int32, model.Int(3), false)}, true)
		out.waitN(t, 3)
		st := s.Status()
		if st.Counters["seq_gaps"] != 2 || st.Counters["rebirth_requests"] != 1 {
			t.Fatalf("counters %+v", st.Counters)
		}
		if n := rebirths(t, b.WaitFor(t, waitTimeout, "", func([]mqtttest.Message) bool { return true }), ncmd); n != 1 {
			t.Fatalf("%d rebirth requests, want 1", n)
		}
	})

	t.Run("unknown alias", func(t *testing.T) {
		ncmd := "spBv1.0/G1/NCMD/E2"
		out := newCollector()
		s := runSource(t, spConfig(b, "h-alias", false), out)
		b.WaitSubscribed(t, waitTimeout, 2)
		e := newEdge(t, b, "G1", "E2")
		e.nbirth(e.metric("a", "a", sparkplugb.DataType_Int32, model.Int(1), true))
		out.waitN(t, 1)
		bogus := &sparkplugb.Metric{Alias: proto.Uint64(999)}
		_ = sparkplugb.SetValue(bogus, model.Int(5), sparkplugb.DataType_Int32)
		e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{bogus, e.metric("a", "a", sparkplugb.DataType_Int32, model.Int(2), false)}, true)
		msgs := b.WaitFor(t, waitTimeout, "NCMD rebirth", func(m []mqtttest.Message) bool { return len(mqtttest.On(m, ncmd)) >= 1 })
		rebirths(t, msgs, ncmd)
		got := out.waitN(t, 2)
		if len(got) != 2 || got[1].Value.AsInt() != 2 {
			t.Fatalf("known metrics of the message must be emitted: %s", dumpSamples(got))
		}
		if st := s.Status(); st.Counters["unknown_aliases"] != 1 || st.Counters["seq_gaps"] != 0 {
			t.Fatalf("counters %+v", st.Counters)
		}
	})

	t.Run("data before birth", func(t *testing.T) {
		ncmd := "spBv1.0/G1/NCMD/E3"
		out := newCollector()
		s := runSource(t, spConfig(b, "h-early", false), out)
		b.WaitSubscribed(t, waitTimeout, 3)
		e := newEdge(t, b, "G1", "E3")
		e.alias["a"] = 1
		e.send(sparkplugb.NDATA, "", []*sparkplugb.Metric{e.metric("a", "a", sparkplugb.DataType_Int32, model.Int(2), false)}, true)
		b.WaitFor(t, waitTimeout, "NCMD rebirth", func(m []mqtttest.Message) bool { return len(mqtttest.On(m, ncmd)) >= 1 })
		// DDATA of a device without DBIRTH after NBIRTH is rebirth too, but
		// rate-limited: the node was asked a moment ago.
		e.nbirth()
		e.send(sparkplugb.DDATA, "D9", []*sparkplugb.Metric{e.metric("a", "a", sparkplugb.DataType_Int32, model.Int(2), false)}, true)
		e.send(sparkplugb.DBIRTH, "D9", []*sparkplugb.Metric{e.metric("d", "d", sparkplugb.DataType_Int32, model.Int(4), true)}, true)
		got := out.waitN(t, 1)
		if got[0].Path != "spBv1.0/G1/E3/D9/d" || s.Status().Counters["rebirth_requests"] != 1 {
			t.Fatalf("got %s, counters %+v", dumpSamples(got), s.Status().Counters)
		}
	})
}

// TestSparkplugDeaths: NDEATH with the birth's bdSeq marks every metric of
// the node and its devices stale; a late NDEATH with another bdSeq is
// ignored; DDEATH marks only its device.
func TestSparkplugDeaths(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	out := newCollector()
	s := runSource(t, spConfig(b, "h-death", false), out, withClock)
	b.WaitSubscribed(t, waitTimeout, 1)
	e := newEdge(t, b, "G1", "E1")
	e.bdSeq = 7
	mk := func(key string, v int64) *sparkplugb.Metric {
		return e.metric(key, key[strings.IndexByte(key, '/')+1:], sparkplugb.DataType_Int64, model.Int(v), true)
	}
	e.nbirth(mk("n/a", 1))
	e.send(sparkplugb.DBIRTH, "D1", []*sparkplugb.Metric{mk("d1/x", 2), mk("d1/y", 3)}, true)
	e.send(sparkplugb.DBIRTH, "D2", []*sparkplugb.Metric{mk("d2/z", 4)}, true)
	out.waitN(t, 4)

	e.send(sparkplugb.DDEATH, "D2", nil, true)
	got := out.waitN(t, 5)
	if g := got[4]; g.Path != "spBv1.0/G1/E1/D2/z" || g.Quality.Code != model.Bad || g.Quality.Reason != model.ReasonStale || g.Value.IsValid() {
		t.Fatalf("DDEATH: %s", dumpSamples(got[4:]))
	}

	e.ndeath(6) // a late will of an older session
	e.ndeath(7)
	got = out.waitN(t, 8)
	wantStale := []string{"spBv1.0/G1/E1/a", "spBv1.0/G1/E1/D1/x", "spBv1.0/G1/E1/D1/y"}
	for i, p := range wantStale {
		g := got[5+i]
		if g.Path != p || g.Quality.Code != model.Bad || g.Quality.Reason != model.ReasonStale {
			t.Fatalf("NDEATH stale samples:\n%s", dumpSamples(got[5:]))
		}
	}
	st := s.Status()
	if st.Counters["late_deaths"] != 1 || st.Children[0].State != "offline" || st.Children[0].Counters["deaths"] != 1 {
		t.Fatalf("status %+v", st)
	}

	// A new session: NBIRTH brings the node back.
	e.bdSeq = 8
	e.nbirth(mk("n/a", 10))
	got = out.waitN(t, 9)
	if g := got[8]; g.Path != "spBv1.0/G1/E1/a" || g.Value.AsInt() != 10 || !g.Quality.IsGood() {
		t.Fatalf("rebirth: %s", dumpSamples(got[8:]))
	}
}

// TestSparkplugQualityAndHistory maps the Quality property, weir_reason,
// is_null and is_historical.
func TestSparkplugQualityAndHistory(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	out := newCollector()
	runSource(t, spConfig(b, "h-q", false), out)
	b.WaitSubscribed(t, waitTimeout, 1)
	e := newEdge(t, b, "G1", "E1")
	good := e.metric("g", "g", sparkplugb.DataType_Double, model.Float(1), true)
	stale := e.metric("s", "s", sparkplugb.DataType_Double, model.Float(2), true)
	sparkplugb.AddProperty(stale, sparkplugb.QualityProperty, sparkplugb.Int32Property(sparkplugb.QualityStale))
	bad := e.metric("b", "b", sparkplugb.DataType_Double, model.Value{}, true)
	sparkplugb.AddProperty(bad, sparkplugb.QualityProperty, sparkplugb.Int32Property(sparkplugb.QualityBad))
	sparkplugb.AddProperty(bad, "weir_reason", sparkplugb.StringProperty("timeout"))
	null := e.metric("n", "n", sparkplugb.DataType_Double, model.Value{}, true)
	hist := e.metric("h", "h", sparkplugb.DataType_Double, model.Float(3), true)
	hist.IsHistorical = proto.Bool(true)
	e.nbirth(good, stale, bad, null, hist)
	got := byPath(out.waitN(t, 5))
	check := func(name string, q model.Quality, valid, historical bool) {
		t.Helper()
		g := got["spBv1.0/G1/E1/"+name]
		if g.Quality != q || g.Value.IsValid() != valid || g.Historical != historical {
			t.Errorf("%s: %#v %s hist=%v", name, g.Value, g.Quality, g.Historical)
		}
	}
	check("g", model.Quality{}, true, false)
	check("s", model.Quality{Code: model.Uncertain, Reason: model.ReasonStale}, true, false)
	check("b", model.Quality{Code: model.Bad, Reason: "timeout"}, false, false)
	check("n", model.Quality{Code: model.Bad, Reason: ReasonNull}, false, false)
	check("h", model.Quality{}, true, true)
}

// TestSparkplugState: with publish_state the host publishes a retained
// STATE online (3.0 JSON) after subscribing, registers offline as its will,
// republishes online when it sees itself offline, and says offline when
// stopped.
func TestSparkplugState(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	topic := "spBv1.0/STATE/h-state"
	out := newCollector()
	dials := make(chan error, 4)
	stop := runSourceStoppable(t, spConfig(b, "h-state", true), out, dialCounter(dials))
	msgs := b.WaitFor(t, waitTimeout, "STATE online", func(m []mqtttest.Message) bool { return len(mqtttest.On(m, topic)) >= 1 })
	first := mqtttest.On(msgs, topic)[0]
	var st struct {
		Online    bool   `json:"online"`
		Timestamp uint64 `json:"timestamp"`
	}
	if err := json.Unmarshal(first.Payload, &st); err != nil || !st.Online || st.Timestamp == 0 || !first.Retain {
		t.Fatalf("STATE %s retain=%v: %v", first.Payload, first.Retain, err)
	}
	// The will: the broker holds it for the client.
	cl, ok := b.Server().Clients.Get("h-state")
	if !ok {
		t.Fatal("client not found on the broker")
	}
	will := cl.Properties.Will
	if will.TopicName != topic || !will.Retain || will.Qos != 1 || string(will.Payload) != string(sparkplugb.State{Timestamp: st.Timestamp}.AppendJSON(nil)) {
		t.Fatalf("will %s %q retain=%v qos=%d", will.TopicName, will.Payload, will.Retain, will.Qos)
	}
	// Someone (a late will) says this host is offline: it republishes online.
	if err := b.Server().Publish(topic, sparkplugb.State{Online: false, Timestamp: st.Timestamp}.AppendJSON(nil), true, 1); err != nil {
		t.Fatal(err)
	}
	b.WaitFor(t, waitTimeout, "STATE republished", func(m []mqtttest.Message) bool {
		got := mqtttest.On(m, topic)
		return len(got) >= 3 && strings.Contains(string(got[len(got)-1].Payload), `"online":true`)
	})
	stop()
	// mochi acknowledges a PUBLISH before handing it to subscribers, so the
	// last STATE may be recorded just after Run returned.
	b.WaitFor(t, waitTimeout, "STATE offline after stop", func(m []mqtttest.Message) bool {
		got := mqtttest.On(m, topic)
		return strings.Contains(string(got[len(got)-1].Payload), `"online":false`)
	})
}

// TestSparkplugConnectionLoss: when the broker connection drops, every
// current metric becomes bad ("node offline"), and after reconnecting the
// host asks known edge nodes to rebirth.
func TestSparkplugConnectionLoss(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	out := newCollector()
	s := runSource(t, spConfig(b, "h-loss", false), out)
	b.WaitSubscribed(t, waitTimeout, 1)
	e := newEdge(t, b, "G1", "E1")
	e.nbirth(e.metric("a", "a", sparkplugb.DataType_Int32, model.Int(1), true))
	out.waitN(t, 1)
	b.DropAll()
	got := out.waitN(t, 2)
	if g := got[1]; g.Path != "spBv1.0/G1/E1/a" || g.Quality.Code != model.Bad || g.Quality.Reason != ReasonNodeOffline {
		t.Fatalf("after loss: %s", dumpSamples(got))
	}
	b.WaitFor(t, waitTimeout, "NCMD rebirth after reconnect", func(m []mqtttest.Message) bool { return len(mqtttest.On(m, "spBv1.0/G1/NCMD/E1")) >= 1 })
	if st := s.Status(); st.Counters["rebirth_requests"] != 1 {
		t.Fatalf("counters %+v", st.Counters)
	}
}
