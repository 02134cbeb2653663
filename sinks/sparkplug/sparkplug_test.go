package sparkplug

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 10 * time.Second

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// testCfg is a sink config for broker b with a unique group per test.
func testCfg(t *testing.T, b *mqtttest.Broker, version string) Config {
	group := strings.NewReplacer("/", "-", "#", "-", "+", "-").Replace(t.Name())
	return Config{
		Broker:  mqttclient.Broker{URL: b.URL("tcp"), ProtocolVersion: version, ConnectTimeout: 5 * time.Second},
		GroupID: group, EdgeNodeID: "E1",
		BdSeqFile:       filepath.Join(t.TempDir(), "bdseq"),
		RebirthDebounce: time.Millisecond,
	}
}

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func sample(path string, v model.Value, seq uint64) model.Sample {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano() + int64(seq)*int64(time.Millisecond)
	return model.Sample{Path: path, Value: v, SourceTime: ts, EdgeTime: ts, Seq: seq}
}

func bdSeqOf(t testing.TB, p *sparkplugb.Payload) uint64 {
	t.Helper()
	m := sparkplugb.FindMetric(p, sparkplugb.MetricBdSeq)
	if m == nil {
		t.Fatal("no bdSeq metric")
	}
	if sparkplugb.DataType(m.GetDatatype()) != sparkplugb.DataType_Int64 {
		t.Fatalf("bdSeq datatype %d", m.GetDatatype())
	}
	return m.GetLongValue()
}

func hasN(n int, types ...sparkplugb.MessageType) func(t *testing.T, group string) func([]mqtttest.Message) bool {
	return func(t *testing.T, group string) func([]mqtttest.Message) bool {
		return func(msgs []mqtttest.Message) bool {
			return len(ofType(sparkplugMsgs(t, msgs, group, "E1"), types...)) >= n
		}
	}
}

// TestSession checks a whole session per protocol version: NBIRTH, DBIRTH
// with every metric, alias-only DDATA, properties, the NDEATH will on an
// abnormal loss with the NBIRTH's bdSeq, and the next connect's bdSeq.
func TestSession(t *testing.T) {
	for _, version := range []string{Version311, Version5} {
		t.Run(version, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			px := mqtttest.StartProxy(t, b.Addr())
			cfg := testCfg(t, b, version)
			cfg.URL = "tcp://" + px.Addr()
			s := newSink(t, cfg)
			if err := s.Connect(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			g := cfg.GroupID
			batch := []model.Sample{
				sample("line/press/temp", model.Float(21.5), 1),
				sample("line/press/count", model.Int(-7), 2),
				sample("line/oven/on", model.Bool(true), 3),
				sample("uptime", model.Uint(99), 4),
				sample("line/press/temp", model.Float(22), 5),
			}
			batch[1].Quality = model.Quality{Code: model.Uncertain, Reason: "drift"}
			batch[2].Historical = true
			if err := s.Write(ctxT(t), batch); err != nil {
				t.Fatal(err)
			}
			msgs := sparkplugMsgs(t, b.WaitFor(t, wait, "3 data messages", hasN(3, sparkplugb.DDATA, sparkplugb.NDATA)(t, g)), g, "E1")
			// Expected order: NBIRTH(0) [connect]; NBIRTH again (new node
			// metric "uptime") + 2 DBIRTHs; DDATA press, DDATA oven, NDATA.
			var types []string
			for i, m := range msgs {
				types = append(types, string(m.topic.Type)+"/"+m.topic.Device)
				if m.qos != 0 || m.retain {
					t.Errorf("%s: qos %d retain %v, want 0/false", m.raw, m.qos, m.retain)
				}
				if i > 0 && m.payload.GetSeq() != (msgs[i-1].payload.GetSeq()+1)%256 && m.topic.Type != sparkplugb.NBIRTH {
					t.Errorf("%s: seq %d after %d", m.raw, m.payload.GetSeq(), msgs[i-1].payload.GetSeq())
				}
			}
			want := "NBIRTH/ NBIRTH/ DBIRTH/line:press DBIRTH/line:oven DDATA/line:press DDATA/line:oven NDATA/"
			if got := strings.Join(types, " "); got != want {
				t.Fatalf("messages:\n got %s\nwant %s", got, want)
			}
			nb := msgs[1].payload
			if nb.GetSeq() != 0 || sparkplugb.FindMetric(nb, sparkplugb.MetricRebirth).GetBooleanValue() {
				t.Fatalf("NBIRTH seq %d", nb.GetSeq())
			}
			if rb := sparkplugb.FindMetric(nb, sparkplugb.MetricRebirth); rb.Alias != nil || rb.GetDatatype() != uint32(sparkplugb.DataType_Boolean) {
				t.Fatal("Node Control/Rebirth must be a Boolean without alias")
			}
			aliases := map[uint64]*sparkplugb.Metric{}
			for _, m := range append([]spMsg{msgs[1]}, msgs[2:4]...) {
				for _, bm := range m.payload.Metrics {
					if bm.Alias == nil {
						continue
					}
					if bm.Name == nil || bm.Datatype == nil || bm.Timestamp == nil {
						t.Fatalf("birth metric without name/datatype/timestamp: %v", bm)
					}
					if aliases[bm.GetAlias()] != nil {
						t.Fatalf("alias %d used twice", bm.GetAlias())
					}
					aliases[bm.GetAlias()] = bm
				}
			}
			press := msgs[4].payload
			if len(press.Metrics) != 3 {
				t.Fatalf("press DDATA has %d metrics", len(press.Metrics))
			}
			wantNames := []string{"temp", "count", "temp"}
			wantVals := []model.Value{model.Float(21.5), model.Int(-7), model.Float(22)}
			for i, m := range press.Metrics {
				if m.Name != nil || m.Datatype != nil {
					t.Fatalf("DDATA metric carries name or datatype: %v", m)
				}
				bm := aliases[m.GetAlias()]
				if bm.GetName() != wantNames[i] {
					t.Fatalf("metric %d: alias %d is %q, want %q", i, m.GetAlias(), bm.GetName(), wantNames[i])
				}
				v, err := sparkplugb.ValueAs(m, sparkplugb.DataType(bm.GetDatatype()))
				if err != nil || !v.Equal(wantVals[i]) {
					t.Fatalf("metric %d: %v %v, want %v", i, v, err, wantVals[i])
				}
				if m.GetTimestamp() != uint64(batch[[]int{0, 1, 4}[i]].SourceTime/1e6) {
					t.Fatalf("metric %d timestamp %d", i, m.GetTimestamp())
				}
				seq, _ := sparkplugb.PropertyInt(sparkplugb.Property(m, PropSeq))
				if uint64(seq) != batch[[]int{0, 1, 4}[i]].Seq {
					t.Fatalf("metric %d weir_seq %d", i, seq)
				}
			}
			if q, ok := sparkplugb.PropertyInt(sparkplugb.Property(press.Metrics[1], sparkplugb.QualityProperty)); !ok || q != 500 {
				t.Fatalf("uncertain quality property = %d %v", q, ok)
			}
			if r := sparkplugb.Property(press.Metrics[1], PropReason); r.GetStringValue() != "drift" {
				t.Fatalf("reason %q", r.GetStringValue())
			}
			if sparkplugb.Property(press.Metrics[0], sparkplugb.QualityProperty) != nil {
				t.Fatal("good metric carries Quality")
			}
			if !msgs[5].payload.Metrics[0].GetIsHistorical() || press.Metrics[0].GetIsHistorical() {
				t.Fatal("is_historical not carried")
			}
			birthBd := bdSeqOf(t, nb)

			// Abnormal loss: the broker publishes the will.
			px.Drop()
			got := b.WaitFor(t, wait, "NDEATH will", hasN(1, sparkplugb.NDEATH)(t, g))
			death := ofType(sparkplugMsgs(t, got, g, "E1"), sparkplugb.NDEATH)[0]
			if death.qos != 1 || death.retain {
				t.Errorf("NDEATH qos %d retain %v, want 1/false", death.qos, death.retain)
			}
			if death.payload.Seq != nil || len(death.payload.Metrics) != 1 || bdSeqOf(t, death.payload) != birthBd {
				t.Fatalf("NDEATH %v, want only bdSeq=%d and no seq", death.payload, birthBd)
			}
			// The engine sees ErrDisconnected, reconnects: bdSeq + 1.
			err := s.Write(ctxT(t), []model.Sample{sample("line/press/temp", model.Float(1), 6)})
			for err == nil { // the loss may not be noticed by the first write
				err = s.Write(ctxT(t), []model.Sample{sample("line/press/temp", model.Float(1), 6)})
			}
			if !errors.Is(err, pipeline.ErrDisconnected) {
				t.Fatalf("Write after loss: %v", err)
			}
			if err := s.Connect(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			got = b.WaitFor(t, wait, "second NBIRTH", hasN(3, sparkplugb.NBIRTH)(t, g))
			nbs := ofType(sparkplugMsgs(t, got, g, "E1"), sparkplugb.NBIRTH)
			if bd := bdSeqOf(t, nbs[2].payload); bd != birthBd+1 {
				t.Fatalf("bdSeq after reconnect %d, want %d", bd, birthBd+1)
			}
			if err := s.Close(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			got = b.WaitFor(t, wait, "NDEATH on close", hasN(2, sparkplugb.NDEATH)(t, g))
			deaths := ofType(sparkplugMsgs(t, got, g, "E1"), sparkplugb.NDEATH)
			if bdSeqOf(t, deaths[1].payload) != birthBd+1 {
				t.Fatal("NDEATH on close carries the wrong bdSeq")
			}
		})
	}
}

// TestSeqWraps writes enough messages, alternating node and device, for
// seq to wrap, and checks the one counter runs 0..255,0.. without gaps.
func TestSeqWraps(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := testCfg(t, b, Version311)
	s := newSink(t, cfg)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for i := range uint64(300) {
		path := "dev/a"
		if i%2 == 1 {
			path = "nodemetric"
		}
		if err := s.Write(ctxT(t), []model.Sample{sample(path, model.Uint(i), i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	g := cfg.GroupID
	msgs := sparkplugMsgs(t, b.WaitFor(t, wait, "300 data messages", hasN(300, sparkplugb.DDATA, sparkplugb.NDATA)(t, g)), g, "E1")
	// Start from the last NBIRTH (the node metric's first sample causes one).
	last := 0
	for i, m := range msgs {
		if m.topic.Type == sparkplugb.NBIRTH {
			last = i
		}
	}
	wrapped := false
	for i := last; i < len(msgs); i++ {
		want := uint64(i-last) % 256
		if got := msgs[i].payload.GetSeq(); got != want {
			t.Fatalf("message %d (%s): seq %d, want %d", i, msgs[i].raw, got, want)
		}
		if i > last && want == 0 {
			wrapped = true
			if prev := msgs[i-1]; prev.payload.GetSeq() != 255 {
				t.Fatal("no 255 before 0")
			}
		}
	}
	if !wrapped {
		t.Fatalf("seq never wrapped (%d messages)", len(msgs)-last)
	}
	if st := s.Status(); st.Gauges["seq"] != float64(msgs[len(msgs)-1].payload.GetSeq()) {
		t.Fatalf("status seq %v", st.Gauges["seq"])
	}
}

// TestBdSeqSurvivesRestart: a second sink on the same bdseq file (a
// process restart) continues the sequence; Close publishes NDEATH with the
// session's bdSeq.
func TestBdSeqSurvivesRestart(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := testCfg(t, b, Version5)
	g := cfg.GroupID
	for i := range 3 {
		s := newSink(t, cfg)
		if err := s.Connect(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		got := sparkplugMsgs(t, b.WaitFor(t, wait, "NDEATH", hasN(i+1, sparkplugb.NDEATH)(t, g)), g, "E1")
		nb := ofType(got, sparkplugb.NBIRTH)[i]
		nd := ofType(got, sparkplugb.NDEATH)[i]
		if bdSeqOf(t, nb.payload) != uint64(i) || bdSeqOf(t, nd.payload) != uint64(i) {
			t.Fatalf("restart %d: NBIRTH bdSeq %d, NDEATH bdSeq %d", i, bdSeqOf(t, nb.payload), bdSeqOf(t, nd.payload))
		}
	}
	if b, _ := os.ReadFile(cfg.BdSeqFile); string(b) != "2\n" {
		t.Fatalf("bdseq file %q", b)
	}
}

func rebirthCmd(t testing.TB) []byte {
	m := &sparkplugb.Metric{Name: proto.String(sparkplugb.MetricRebirth), Datatype: proto.Uint32(uint32(sparkplugb.DataType_Boolean))}
	if err := sparkplugb.SetValue(m, model.Bool(true), sparkplugb.DataType_Boolean); err != nil {
		t.Fatal(err)
	}
	b, err := sparkplugb.Encode(&sparkplugb.Payload{Timestamp: proto.Uint64(1), Metrics: []*sparkplugb.Metric{m}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRebirth: NCMD Node Control/Rebirth=true → NBIRTH (seq 0, same
// bdSeq) and every DBIRTH again, with every metric known.
func TestRebirth(t *testing.T) {
	for _, version := range []string{Version311, Version5} {
		t.Run(version, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			cfg := testCfg(t, b, version)
			g := cfg.GroupID
			s := newSink(t, cfg)
			if err := s.Connect(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctxT(t), []model.Sample{sample("d1/a", model.Float(1), 1), sample("d2/b", model.Int(2), 2)}); err != nil {
				t.Fatal(err)
			}
			// A new tag on a known device: DBIRTH again with both metrics.
			if err := s.Write(ctxT(t), []model.Sample{sample("d1/c", model.String("x"), 3)}); err != nil {
				t.Fatal(err)
			}
			b.WaitFor(t, wait, "3 DDATA", hasN(3, sparkplugb.DDATA)(t, g))
			b.Publish(t, "spBv1.0/"+g+"/NCMD/E1", rebirthCmd(t), 1, false)
			msgs := sparkplugMsgs(t, b.WaitFor(t, wait, "rebirth", hasN(2, sparkplugb.NBIRTH)(t, g)), g, "E1")
			msgs = sparkplugMsgs(t, b.WaitFor(t, wait, "DBIRTHs after rebirth", hasN(5, sparkplugb.DBIRTH)(t, g)), g, "E1")
			births := ofType(msgs, sparkplugb.NBIRTH, sparkplugb.DBIRTH)
			// NBIRTH, DBIRTH d1, DBIRTH d2, DBIRTH d1 (a, c), NBIRTH, DBIRTH d1, DBIRTH d2
			if len(births) != 7 {
				t.Fatalf("%d births", len(births))
			}
			if n := len(births[3].payload.Metrics); n != 2 || births[3].topic.Device != "d1" {
				t.Fatalf("DBIRTH after new tag: %s with %d metrics", births[3].raw, n)
			}
			nb := births[4].payload
			if nb.GetSeq() != 0 || bdSeqOf(t, nb) != bdSeqOf(t, births[0].payload) {
				t.Fatalf("rebirth NBIRTH seq %d bdSeq %d", nb.GetSeq(), bdSeqOf(t, nb))
			}
			if births[5].payload.GetSeq() != 1 || births[6].payload.GetSeq() != 2 {
				t.Fatal("DBIRTH seq after rebirth")
			}
			d1 := births[5].payload
			if len(d1.Metrics) != 2 {
				t.Fatalf("rebirth DBIRTH d1 has %d metrics", len(d1.Metrics))
			}
			if v, _ := sparkplugb.ValueOf(d1.Metrics[1]); !v.Equal(model.String("x")) {
				t.Fatalf("DBIRTH carries %v, want the last value", v)
			}
			if st := s.Status(); st.Counters["rebirth_requests"] != 1 {
				t.Fatalf("rebirth_requests %d", st.Counters["rebirth_requests"])
			}
			// Data after a rebirth continues the seq.
			if err := s.Write(ctxT(t), []model.Sample{sample("d2/b", model.Int(5), 4)}); err != nil {
				t.Fatal(err)
			}
			msgs = sparkplugMsgs(t, b.WaitFor(t, wait, "DDATA after rebirth", hasN(4, sparkplugb.DDATA)(t, g)), g, "E1")
			if last := msgs[len(msgs)-1]; last.payload.GetSeq() != 3 {
				t.Fatalf("DDATA after rebirth seq %d, want 3", last.payload.GetSeq())
			}
		})
	}
}

// TestPrimaryHost: nothing is published while the host is offline; births
// follow its online STATE; an offline STATE makes the node publish NDEATH
// and disconnect.
func TestPrimaryHost(t *testing.T) {
	tests := []struct {
		name            string
		legacy          bool
		topic           string
		online, offline []byte
	}{
		{"json", false, "spBv1.0/STATE/%s", []byte(`{"online":true,"timestamp":2000}`), []byte(`{"online":false,"timestamp":3000}`)},
		{"legacy", true, "STATE/%s", []byte("ONLINE"), []byte("OFFLINE")},
	}
	for _, tt := range tests {
		for _, version := range []string{Version311, Version5} {
			t.Run(tt.name+"/"+version, func(t *testing.T) {
				b := mqtttest.Start(t, mqtttest.Options{})
				cfg := testCfg(t, b, version)
				cfg.PrimaryHostID, cfg.LegacyState = "host-"+tt.name, tt.legacy
				stateTopic := fmt.Sprintf(tt.topic, cfg.PrimaryHostID)
				g := cfg.GroupID
				s := newSink(t, cfg)
				if err := s.Connect(ctxT(t)); err != nil {
					t.Fatal(err)
				}
				batch := []model.Sample{sample("d/x", model.Float(1), 1)}
				err := s.Write(ctxT(t), batch)
				if err == nil || errors.Is(err, pipeline.ErrRejected) || errors.Is(err, pipeline.ErrDisconnected) || !errors.Is(err, errHostOffline) {
					t.Fatalf("Write while host offline: %v", err)
				}
				// An old, offline STATE changes nothing.
				if !tt.legacy {
					b.Publish(t, stateTopic, []byte(`{"online":false,"timestamp":1000}`), 1, true)
				}
				b.Publish(t, stateTopic, tt.online, 1, true)
				msgs := b.WaitFor(t, wait, "NBIRTH after host online", hasN(1, sparkplugb.NBIRTH)(t, g))
				if n := len(sparkplugMsgs(t, msgs, g, "E1")); n != 1 {
					t.Fatalf("%d messages before host online, want only the NBIRTH", n-1)
				}
				if err := s.Write(ctxT(t), batch); err != nil {
					t.Fatal(err)
				}
				b.WaitFor(t, wait, "DDATA", hasN(1, sparkplugb.DDATA)(t, g))
				b.Publish(t, stateTopic, tt.offline, 1, true)
				msgs = b.WaitFor(t, wait, "NDEATH after host offline", hasN(1, sparkplugb.NDEATH)(t, g))
				deadline := time.Now().Add(wait)
				for {
					err = s.Write(ctxT(t), batch)
					if errors.Is(err, pipeline.ErrDisconnected) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("Write after host offline: %v", err)
					}
					time.Sleep(5 * time.Millisecond) // waiting for the disconnect to be seen: an observation, not synchronisation
				}
				// Reconnect: the retained STATE is offline, so no birth.
				if err := s.Connect(ctxT(t)); err != nil {
					t.Fatal(err)
				}
				if err := s.Write(ctxT(t), batch); !errors.Is(err, errHostOffline) {
					t.Fatalf("Write after reconnect to offline host: %v", err)
				}
				if n := len(ofType(sparkplugMsgs(t, b.Messages(), g, "E1"), sparkplugb.NBIRTH)); n != 1 {
					t.Fatalf("%d NBIRTHs while host offline", n)
				}
				_ = msgs
			})
		}
	}
}

// TestDeviceDeath: a device whose every metric turns bad gets DDEATH; more
// bad samples publish nothing; a good sample brings DBIRTH then DDATA.
func TestDeviceDeath(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := testCfg(t, b, Version311)
	g := cfg.GroupID
	s := newSink(t, cfg)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	bad := model.Quality{Code: model.Bad, Reason: model.ReasonUnreachable}
	badS := func(p string, seq uint64) model.Sample {
		x := sample(p, model.Value{}, seq)
		x.Quality = bad
		return x
	}
	steps := [][]model.Sample{
		{sample("plc/a", model.Float(1), 1), sample("plc/b", model.Float(2), 2), sample("other/c", model.Float(3), 3)},
		{badS("plc/a", 4), badS("plc/b", 5)},
		{badS("plc/a", 6)},
		{sample("plc/b", model.Float(7), 7)},
	}
	for i, st := range steps {
		if err := s.Write(ctxT(t), st); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	msgs := sparkplugMsgs(t, b.WaitFor(t, wait, "revived DDATA", hasN(4, sparkplugb.DDATA)(t, g)), g, "E1")
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.topic.Type)+"/"+m.topic.Device)
	}
	want := "NBIRTH/ DBIRTH/plc DBIRTH/other DDATA/plc DDATA/other DDATA/plc DDEATH/plc DBIRTH/plc DDATA/plc"
	if strings.Join(got, " ") != want {
		t.Fatalf("messages:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	badData := msgs[5].payload.Metrics[0]
	if !badData.GetIsNull() {
		t.Fatal("bad sample without value must be is_null")
	}
	if q, _ := sparkplugb.PropertyInt(sparkplugb.Property(badData, sparkplugb.QualityProperty)); q != 0 {
		t.Fatalf("bad Quality %d", q)
	}
	if msgs[6].payload.Seq == nil || len(msgs[6].payload.Metrics) != 0 {
		t.Fatal("DDEATH must carry seq and no metrics")
	}
	if st := s.Status(); st.Counters["ddeaths"] != 1 || st.Counters["suppressed_samples"] != 1 {
		t.Fatalf("counters %v", st.Counters)
	}
}

// TestTypeChange: a tag first seen bad (datatype guessed) then good with
// another kind is re-born with the right datatype.
func TestTypeChange(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := testCfg(t, b, Version311)
	g := cfg.GroupID
	s := newSink(t, cfg)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	first := sample("d/x", model.Value{}, 1)
	first.Quality.Code = model.Bad
	if err := s.Write(ctxT(t), []model.Sample{first, sample("d/y", model.Int(1), 2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctxT(t), []model.Sample{sample("d/x", model.String("on"), 3)}); err != nil {
		t.Fatal(err)
	}
	msgs := sparkplugMsgs(t, b.WaitFor(t, wait, "2 DDATA", hasN(2, sparkplugb.DDATA)(t, g)), g, "E1")
	births := ofType(msgs, sparkplugb.DBIRTH)
	if len(births) != 2 {
		t.Fatalf("%d DBIRTHs, want 2", len(births))
	}
	if dt := births[1].payload.Metrics[0].GetDatatype(); dt != uint32(sparkplugb.DataType_String) {
		t.Fatalf("datatype after change %d", dt)
	}
}

func TestWriteAfterCloseAndUnconnected(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	s := newSink(t, testCfg(t, b, Version311))
	if err := s.Write(ctxT(t), []model.Sample{sample("a/b", model.Int(1), 1)}); !errors.Is(err, pipeline.ErrDisconnected) {
		t.Fatalf("Write before Connect: %v", err)
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctxT(t)); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
	if !bytes.Contains([]byte(s.Status().State), []byte("stopped")) {
		t.Fatalf("state %s", s.Status().State)
	}
}
