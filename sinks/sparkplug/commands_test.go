package sparkplug

import (
	"context"
	"github.com/weir-edge/weir/internal/cmdproof/prooftest"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/security"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/writegate"
)

// fakeGate records requests; it denies paths ending in "/locked".
type fakeGate struct {
	mu   sync.Mutex
	reqs []writegate.Request
}

func (g *fakeGate) Write(_ context.Context, req writegate.Request) (writegate.Result, error) {
	g.mu.Lock()
	g.reqs = append(g.reqs, req)
	g.mu.Unlock()
	res := writegate.Result{Caller: req.Caller, Path: req.Path, New: req.Value, Result: audit.Allowed}
	// As the real gate: no issue time, or a path no source serves → denied.
	if req.IssuedAt.IsZero() || strings.HasPrefix(req.Path, "spBv1.0/") {
		res.Result, res.Reason = audit.Denied, "refused"
		return res, &writegate.DeniedError{Reason: "refused"}
	}
	if strings.HasSuffix(req.Path, "/locked") {
		res.Result, res.Reason = audit.Denied, "locked"
		return res, &writegate.DeniedError{Reason: "locked"}
	}
	return res, nil
}

func (g *fakeGate) calls() []writegate.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]writegate.Request(nil), g.reqs...)
}

// cmdPayload encodes a command; ts 0 leaves the payload timestamp out.
func cmdPayload(t testing.TB, ts uint64, metrics ...*sparkplugb.Metric) []byte {
	t.Helper()
	p := &sparkplugb.Payload{Metrics: metrics}
	if ts != 0 {
		p.Timestamp = proto.Uint64(ts)
	}
	b, err := sparkplugb.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func named(t testing.TB, name string, v model.Value, dt sparkplugb.DataType) *sparkplugb.Metric {
	m := &sparkplugb.Metric{Name: proto.String(name), Datatype: proto.Uint32(uint32(dt))}
	if err := sparkplugb.SetValue(m, v, dt); err != nil {
		t.Fatal(err)
	}
	return m
}

// aliased is a metric by alias only, without datatype (as hosts send it
// after a birth): the sink takes the datatype from its own birth.
func aliased(t testing.TB, alias uint64, v model.Value, dt sparkplugb.DataType) *sparkplugb.Metric {
	m := &sparkplugb.Metric{Alias: proto.Uint64(alias)}
	if err := sparkplugb.SetValue(m, v, dt); err != nil {
		t.Fatal(err)
	}
	m.Datatype = nil
	return m
}

// waitCounter polls a status counter until it reaches n.
func waitCounter(t *testing.T, s *Sink, key string, n uint64) {
	t.Helper()
	deadline := time.After(wait)
	for s.Status().Counters[key] < n {
		select {
		case <-deadline:
			t.Fatalf("%s = %d, want %d; status %+v", key, s.Status().Counters[key], n, s.Status().Counters)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// aliasOf finds a metric's alias in the DBIRTH/NBIRTH the sink published.
func aliasOf(t *testing.T, msgs []spMsg, device, name string) uint64 {
	t.Helper()
	for _, m := range ofType(msgs, sparkplugb.NBIRTH, sparkplugb.DBIRTH) {
		if m.topic.Device != device {
			continue
		}
		for _, x := range m.payload.Metrics {
			if x.GetName() == name {
				return x.GetAlias()
			}
		}
	}
	t.Fatalf("no birth for %s/%s", device, name)
	return 0
}

// TestWriteCommands: DCMD by name and by alias and NCMD metrics reach the
// gate with the tag path, value, caller and issue time; unknown metrics
// and commands without timestamp reach it too, so that it refuses and
// audits them.
func TestWriteCommands(t *testing.T) {
	for _, version := range []string{Version311, Version5} {
		t.Run(version, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			cfg := testCfg(t, b, version)
			cfg.Commands = CommandsConfig{Trust: TrustBrokerACL, Caller: "scada"}
			g := cfg.GroupID
			s := newSink(t, cfg)
			fg := &fakeGate{}
			s.SetWriteGate(fg)
			if err := s.Connect(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctxT(t), []model.Sample{
				sample("line1/sp", model.Float(1), 1), sample("line1/mode", model.Int(2), 2),
				sample("line1/locked", model.Bool(false), 3), sample("level", model.Float(0.5), 4),
			}); err != nil {
				t.Fatal(err)
			}
			msgs := sparkplugMsgs(t, b.WaitFor(t, wait, "DBIRTH", hasN(1, sparkplugb.DBIRTH)(t, g)), g, "E1")
			modeAlias := aliasOf(t, msgs, "line1", "mode")
			dcmd := "spBv1.0/" + g + "/DCMD/E1/line1"
			ncmd := "spBv1.0/" + g + "/NCMD/E1"
			ts := uint64(time.Now().UnixMilli())

			tests := []struct {
				name, topic string
				payload     []byte
				counter     string
				want        *writegate.Request // nil: the gate is not called
			}{
				{"DCMD by name", dcmd, cmdPayload(t, ts, named(t, "sp", model.Float(42.5), sparkplugb.DataType_Double)), "write_commands_allowed",
					&writegate.Request{Path: "line1/sp", Value: model.Float(42.5), Caller: "sparkplug:scada", Role: security.Operator}},
				{"DCMD by alias", dcmd, cmdPayload(t, ts, aliased(t, modeAlias, model.Int(7), sparkplugb.DataType_Int64)), "write_commands_allowed",
					&writegate.Request{Path: "line1/mode", Value: model.Int(7), Caller: "sparkplug:scada", Role: security.Operator}},
				{"NCMD node metric", ncmd, cmdPayload(t, ts, named(t, "level", model.Float(0.75), sparkplugb.DataType_Double)), "write_commands_allowed",
					&writegate.Request{Path: "level", Value: model.Float(0.75), Caller: "sparkplug:scada", Role: security.Operator}},
				{"denied by the gate", dcmd, cmdPayload(t, ts, named(t, "locked", model.Bool(true), sparkplugb.DataType_Boolean)), "write_commands_denied",
					&writegate.Request{Path: "line1/locked", Value: model.Bool(true), Caller: "sparkplug:scada", Role: security.Operator}},
				{"unknown metric", dcmd, cmdPayload(t, ts, named(t, "nope", model.Int(1), sparkplugb.DataType_Int64)), "write_commands_unknown",
					&writegate.Request{Path: "spBv1.0/" + g + "/E1/line1/nope", Value: model.Int(1), Caller: "sparkplug:scada", Role: security.Operator}},
				{"unknown alias", dcmd, cmdPayload(t, ts, aliased(t, 999, model.Int(1), sparkplugb.DataType_Int64)), "write_commands_unknown",
					&writegate.Request{Path: "spBv1.0/" + g + "/E1/line1/alias-999", Value: model.Int(1), Caller: "sparkplug:scada", Role: security.Operator}},
				{"unknown device", "spBv1.0/" + g + "/DCMD/E1/line9", cmdPayload(t, ts, named(t, "sp", model.Int(1), sparkplugb.DataType_Int64)), "write_commands_unknown",
					&writegate.Request{Path: "spBv1.0/" + g + "/E1/line9/sp", Value: model.Int(1), Caller: "sparkplug:scada", Role: security.Operator}},
				{"no timestamp", dcmd, cmdPayload(t, 0, named(t, "sp", model.Float(1), sparkplugb.DataType_Double)), "write_commands_denied",
					&writegate.Request{Path: "line1/sp", Value: model.Float(1), Caller: "sparkplug:scada", Role: security.Operator}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before, calls := s.Status().Counters, len(fg.calls())
					b.Publish(t, tt.topic, tt.payload, 1, false)
					waitCounter(t, s, tt.counter, before[tt.counter]+1)
					got := fg.calls()[calls:]
					if tt.want == nil {
						if len(got) != 0 {
							t.Fatalf("gate called: %+v", got)
						}
						return
					}
					if len(got) != 1 {
						t.Fatalf("%d gate calls", len(got))
					}
					r := got[0]
					wantIssued := int64(ts)
					if tt.name == "no timestamp" {
						wantIssued = time.Time{}.UnixMilli()
					}
					// An unknown alias has no datatype to decode by: its value
					// is whatever the payload says; only path and caller matter.
					valueOK := r.Value.Equal(tt.want.Value) || strings.Contains(tt.want.Path, "alias-")
					if r.Path != tt.want.Path || !valueOK || r.Caller != tt.want.Caller || r.Role != tt.want.Role ||
						r.IssuedAt.UnixMilli() != wantIssued || r.Reason == "" {
						t.Fatalf("gate got %+v, want %+v", r, tt.want)
					}
				})
			}
			// Node Control/Rebirth still works and is not a write.
			calls := len(fg.calls())
			b.Publish(t, ncmd, rebirthCmd(t), 1, false)
			b.WaitFor(t, wait, "rebirth", hasN(2, sparkplugb.NBIRTH)(t, g))
			if len(fg.calls()) != calls {
				t.Fatal("rebirth reached the gate")
			}
		})
	}
}

// TestWriteCommandsWithPrimaryHost: the caller names the primary host.
func TestWriteCommandsWithPrimaryHost(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := testCfg(t, b, Version311)
	cfg.PrimaryHostID = "scada1"
	cfg.Commands = CommandsConfig{Trust: TrustBrokerACL, Role: security.Engineer}
	g := cfg.GroupID
	b.Publish(t, "spBv1.0/STATE/scada1", []byte(`{"online":true,"timestamp":1}`), 1, true)
	s := newSink(t, cfg)
	fg := &fakeGate{}
	s.SetWriteGate(fg)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b.WaitFor(t, wait, "NBIRTH", hasN(1, sparkplugb.NBIRTH)(t, g))
	if err := s.Write(ctxT(t), []model.Sample{sample("line1/sp", model.Float(1), 1)}); err != nil {
		t.Fatal(err)
	}
	b.Publish(t, "spBv1.0/"+g+"/DCMD/E1/line1", cmdPayload(t, uint64(time.Now().UnixMilli()), named(t, "sp", model.Float(3), sparkplugb.DataType_Double)), 1, false)
	waitCounter(t, s, "write_commands_allowed", 1)
	if c := fg.calls(); len(c) != 1 || c[0].Caller != "sparkplug:scada1" || c[0].Role != security.Engineer {
		t.Fatalf("calls %+v", c)
	}
}

// TestWriteCommandsUntrusted: with a gate but without commands.trust,
// DCMD and NCMD writes never reach the gate; each is counted as denied,
// logged and reported as a refused request. Rebirth still works.
func TestWriteCommandsUntrusted(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := testCfg(t, b, Version311)
	cfg.PrimaryHostID = "" // a primary host is no proof either
	g := cfg.GroupID
	s := newSink(t, cfg)
	fg := &fakeGate{}
	evs := &prooftest.Events{}
	s.SetWriteGate(fg)
	s.SetRecorder(evs)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctxT(t), []model.Sample{sample("line1/sp", model.Float(1), 1), sample("level", model.Float(1), 2)}); err != nil {
		t.Fatal(err)
	}
	b.WaitFor(t, wait, "DBIRTH", hasN(1, sparkplugb.DBIRTH)(t, g))
	ts := uint64(time.Now().UnixMilli())
	b.Publish(t, "spBv1.0/"+g+"/DCMD/E1/line1", cmdPayload(t, ts, named(t, "sp", model.Float(3), sparkplugb.DataType_Double)), 1, false)
	waitCounter(t, s, "write_commands_denied", 1)
	b.Publish(t, "spBv1.0/"+g+"/NCMD/E1", cmdPayload(t, ts, named(t, "level", model.Float(9), sparkplugb.DataType_Double),
		named(t, sparkplugb.MetricRebirth, model.Bool(true), sparkplugb.DataType_Boolean)), 1, false)
	waitCounter(t, s, "write_commands_denied", 2)
	b.WaitFor(t, wait, "rebirth", hasN(2, sparkplugb.NBIRTH)(t, g))
	if c := fg.calls(); len(c) != 0 {
		t.Fatalf("untrusted commands reached the gate: %+v", c)
	}
	if st := s.Status().Counters; st["write_commands"] != 2 || st["write_commands_allowed"] != 0 {
		t.Fatalf("counters %+v", st)
	}
	all := evs.All()
	if len(all) != 2 {
		t.Fatalf("events %+v", all)
	}
	for i, want := range []string{"spBv1.0/" + g + "/DCMD/E1/line1", "spBv1.0/" + g + "/NCMD/E1"} {
		if ev := all[i]; ev.Kind != security.RequestRefused || ev.Object != want || ev.Outcome != "refused" ||
			!strings.Contains(ev.Detail, "commands.trust") || ev.Remote != "" {
			t.Fatalf("event %+v", ev)
		}
	}
}

// TestCommandsConfig: trust must be broker_acl and needs a commander.
func TestCommandsConfig(t *testing.T) {
	tests := []struct {
		name string
		c    CommandsConfig
		host string
		want string
	}{
		{"off", CommandsConfig{}, "", ""},
		{"trusted", CommandsConfig{Trust: TrustBrokerACL, Caller: "scada"}, "", ""},
		{"primary host is the caller", CommandsConfig{Trust: TrustBrokerACL}, "scada1", ""},
		{"no caller", CommandsConfig{Trust: TrustBrokerACL}, "", "caller: is required"},
		{"bad trust", CommandsConfig{Trust: "yes"}, "", "trust"},
		{"bad caller", CommandsConfig{Trust: TrustBrokerACL, Caller: "a b"}, "", "caller"},
		{"bad role", CommandsConfig{Trust: TrustBrokerACL, Caller: "s", Role: "root"}, "", "role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.validate(tt.host)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestWriteCommandsWithoutGate: the default is read-only — DCMD and NCMD
// writes reach nothing and count nothing.
func TestWriteCommandsWithoutGate(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := testCfg(t, b, Version311)
	g := cfg.GroupID
	s := newSink(t, cfg)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctxT(t), []model.Sample{sample("line1/sp", model.Float(1), 1), sample("level", model.Float(1), 2)}); err != nil {
		t.Fatal(err)
	}
	ts := uint64(time.Now().UnixMilli())
	b.Publish(t, "spBv1.0/"+g+"/DCMD/E1/line1", cmdPayload(t, ts, named(t, "sp", model.Float(3), sparkplugb.DataType_Double)), 1, false)
	// A write and a rebirth in one NCMD: the rebirth is served, the write
	// ignored; the NBIRTH shows the NCMD was handled.
	ncmd := cmdPayload(t, ts, named(t, "level", model.Float(9), sparkplugb.DataType_Double),
		named(t, sparkplugb.MetricRebirth, model.Bool(true), sparkplugb.DataType_Boolean))
	b.Publish(t, "spBv1.0/"+g+"/NCMD/E1", ncmd, 1, false)
	b.WaitFor(t, wait, "rebirth", hasN(2, sparkplugb.NBIRTH)(t, g))
	for k, v := range s.Status().Counters {
		if strings.HasPrefix(k, "write_commands") && v != 0 {
			t.Fatalf("%s = %d without a gate", k, v)
		}
	}
}

// TestCommandTrustOverMosquitto: through the real broker, a DCMD reaches
// the gate only with commands.trust: broker_acl, as the configured caller
// and role; without it, it is refused and reported.
func TestCommandTrustOverMosquitto(t *testing.T) {
	prooftest.RequireMosquitto(t)
	for _, tt := range []struct {
		name    string
		cmds    CommandsConfig
		counter string
	}{
		{"untrusted", CommandsConfig{}, "write_commands_denied"},
		{"trusted", CommandsConfig{Trust: TrustBrokerACL, Caller: "scada", Role: security.Operator}, "write_commands_allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			group := strings.ReplaceAll(prooftest.Prefix(t), "/", "-") + "-" + tt.name
			cfg := Config{
				Broker:  mqttclient.Broker{URL: "tcp://" + prooftest.MosquittoAddr, ProtocolVersion: Version311, ConnectTimeout: 5 * time.Second},
				GroupID: group, EdgeNodeID: "E1", BdSeqFile: filepath.Join(t.TempDir(), "bdseq"), RebirthDebounce: time.Millisecond,
				Commands: tt.cmds,
			}
			cli := prooftest.Dial(t, "spBv1.0/"+group+"/DBIRTH/#")
			s := newSink(t, cfg)
			fg := &fakeGate{}
			evs := &prooftest.Events{}
			s.SetWriteGate(fg)
			s.SetRecorder(evs)
			if err := s.Connect(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctxT(t), []model.Sample{sample("line1/sp", model.Float(1), 1)}); err != nil {
				t.Fatal(err)
			}
			cli.Next(t) // the DBIRTH: the metric is known
			cli.Publish(t, "spBv1.0/"+group+"/DCMD/E1/line1", cmdPayload(t, uint64(time.Now().UnixMilli()), named(t, "sp", model.Float(3), sparkplugb.DataType_Double)))
			waitCounter(t, s, tt.counter, 1)
			calls, all := fg.calls(), evs.All()
			if tt.cmds.Trust == "" {
				if len(calls) != 0 || len(all) != 1 || all[0].Kind != security.RequestRefused {
					t.Fatalf("calls %+v events %+v", calls, all)
				}
				return
			}
			if len(calls) != 1 || calls[0].Caller != "sparkplug:scada" || calls[0].Role != security.Operator || calls[0].Path != "line1/sp" || len(all) != 0 {
				t.Fatalf("calls %+v events %+v", calls, all)
			}
		})
	}
}
