package mqttcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/writegate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSampleConfig(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(SampleConfig))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"minimal", Config{Endpoint: mqttclient.Endpoint{URL: "tcp://127.0.0.1:1883", ClientID: "w"}}, nil},
		{"empty", Config{}, []string{"url", "client_id"}},
		{"bad scheme and topic", Config{Endpoint: mqttclient.Endpoint{URL: "http://h:1", ClientID: "w", ConnectTimeout: -1}, Topic: "a//b"},
			[]string{"url", "topic", "connect_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (len(tt.want) == 0) {
				t.Fatalf("err = %v, want problems at %v", err, tt.want)
			}
			for _, k := range tt.want {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("err %q does not name %s", err, k)
				}
			}
		})
	}
}

func TestDecodeCommand(t *testing.T) {
	ms := int64(1764112800000)
	tests := []struct {
		name, in, want string
		val            model.Value
		at             time.Time
	}{
		{"ms", `{"path":"a/b","value":42.5,"user":"alice","issued_at":1764112800000,"reason":"r","id":"c1"}`, "", model.Float(42.5), time.UnixMilli(ms)},
		{"rfc3339", `{"path":"a/b","value":true,"user":"bob@x.org","issued_at":"2025-11-25T23:20:00Z"}`, "", model.Bool(true), time.Date(2025, 11, 25, 23, 20, 0, 0, time.UTC)},
		{"int", `{"path":"a/b","value":-3,"user":"u","issued_at":1}`, "", model.Int(-3), time.UnixMilli(1)},
		{"not JSON", `write a/b 1`, "not a JSON object", model.Value{}, time.Time{}},
		{"unknown field", `{"path":"a/b","value":1,"user":"u","issued_at":1,"force":true}`, "unknown field", model.Value{}, time.Time{}},
		{"trailing", `{"path":"a/b","value":1,"user":"u","issued_at":1} {}`, "after the JSON", model.Value{}, time.Time{}},
		{"no user", `{"path":"a/b","value":1,"issued_at":1}`, "needs a user", model.Value{}, time.Time{}},
		{"bad user", `{"path":"a/b","value":1,"user":"a b","issued_at":1}`, "may only hold", model.Value{}, time.Time{}},
		{"no issued_at", `{"path":"a/b","value":1,"user":"u"}`, "needs issued_at", model.Value{}, time.Time{}},
		{"null issued_at", `{"path":"a/b","value":1,"user":"u","issued_at":null}`, "needs issued_at", model.Value{}, time.Time{}},
		{"fractional ms", `{"path":"a/b","value":1,"user":"u","issued_at":1.5}`, "integer unix", model.Value{}, time.Time{}},
		{"bad time", `{"path":"a/b","value":1,"user":"u","issued_at":"yesterday"}`, "RFC 3339", model.Value{}, time.Time{}},
		{"no value", `{"path":"a/b","user":"u","issued_at":1}`, "needs a value", model.Value{}, time.Time{}},
		{"array value", `{"path":"a/b","value":[1],"user":"u","issued_at":1}`, "bool, number or string", model.Value{}, time.Time{}},
		{"bad path", `{"path":"a//b","value":1,"user":"u","issued_at":1}`, "path", model.Value{}, time.Time{}},
		{"huge", `{"path":"a/b","value":"` + strings.Repeat("x", 20000) + `","user":"u","issued_at":1}`, "limit", model.Value{}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCommand([]byte(tt.in))
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if err == nil && (!c.Value.Equal(tt.val) || !c.IssuedAt.Equal(tt.at)) {
				t.Fatalf("decoded %+v", c)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"path":"a/b","value":42.5,"user":"alice","issued_at":1764112800000,"reason":"r","id":"c1"}`))
	f.Add([]byte(`{"path":"a/b","value":"x","user":"u","issued_at":"2025-11-25T23:20:00Z"}`))
	f.Add([]byte(`{"path":"","value":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if model.ValidatePath(c.Path) != nil || validUser(c.User) != nil || c.IssuedAt.IsZero() || !c.Value.IsValid() || c.Value.Kind() == model.KindArray {
			t.Fatalf("accepted %q as %+v", b, c)
		}
	})
}

// fakeGate allows writes under "ok/", denies the rest, and records calls.
type fakeGate struct {
	mu   sync.Mutex
	reqs []writegate.Request
}

func (g *fakeGate) Write(_ context.Context, req writegate.Request) (writegate.Result, error) {
	g.mu.Lock()
	g.reqs = append(g.reqs, req)
	g.mu.Unlock()
	res := writegate.Result{Caller: req.Caller, Path: req.Path, New: req.Value}
	switch {
	case strings.HasPrefix(req.Path, "ok/"):
		res.Result, res.Old = audit.Allowed, model.Int(7)
		return res, nil
	case strings.HasPrefix(req.Path, "broken/"):
		res.Result, res.Reason = audit.Failed, "device timeout"
		return res, errors.New("writegate: broken/x: device timeout")
	default:
		res.Result, res.Reason = audit.Denied, "no policy allows writes to "+req.Path
		return res, &writegate.DeniedError{Reason: res.Reason}
	}
}

func (g *fakeGate) calls() []writegate.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]writegate.Request(nil), g.reqs...)
}

// TestCommandsOverMQTT publishes commands on an embedded broker and checks
// the replies on <topic>/result and what reached the gate.
func TestCommandsOverMQTT(t *testing.T) {
	br, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	g := &fakeGate{}
	c, err := New(Config{Endpoint: mqttclient.Endpoint{URL: "tcp://" + br.Addr(), ClientID: "weir-cmd-test"}, Topic: "acme/_commands/write"}, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	replies := make(chan Reply, 16)
	if err := br.Server().Subscribe(c.ResultTopic(), 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		var r Reply
		dec := json.NewDecoder(bytes.NewReader(pk.Payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Errorf("reply %s: %v", pk.Payload, err)
		}
		if pk.FixedHeader.Retain {
			t.Errorf("reply retained")
		}
		replies <- r
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	select {
	case <-c.Subscribed():
	case <-time.After(2 * time.Minute):
		t.Fatal("not subscribed")
	}

	tests := []struct {
		name, in                   string
		wantResult                 audit.Result
		wantReason, wantOld, wantN string
		wantGate                   bool
	}{
		{"allowed", `{"id":"1","path":"ok/sp","value":42,"user":"alice","issued_at":1764112800000,"reason":"recipe"}`, audit.Allowed, "", "7", "42", true},
		{"denied", `{"id":"2","path":"no/sp","value":true,"user":"bob","issued_at":"2025-11-25T23:20:00Z"}`, audit.Denied, "no policy allows writes to no/sp", "null", "true", true},
		{"failed", `{"id":"3","path":"broken/x","value":"s","user":"bob","issued_at":1}`, audit.Failed, "device timeout", "null", `"s"`, true},
		{"malformed JSON", `{"id":"4",`, audit.Denied, "malformed command", "null", "null", false},
		{"unknown field", `{"id":"5","path":"ok/sp","value":1,"user":"a","issued_at":1,"sudo":1}`, audit.Denied, "unknown field", "null", "null", false},
		{"missing user", `{"id":"6","path":"ok/sp","value":1,"issued_at":1}`, audit.Denied, "needs a user", "null", "null", false},
		{"missing issued_at", `{"id":"7","path":"ok/sp","value":1,"user":"alice"}`, audit.Denied, "needs issued_at", "null", "null", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(g.calls())
			if err := br.Server().Publish(c.Topic(), []byte(tt.in), false, 1); err != nil {
				t.Fatal(err)
			}
			var r Reply
			select {
			case r = <-replies:
			case <-time.After(2 * time.Minute):
				t.Fatal("no reply")
			}
			if r.Result != tt.wantResult || !strings.Contains(r.Reason, tt.wantReason) ||
				string(r.Old) != tt.wantOld || string(r.New) != tt.wantN {
				t.Fatalf("reply %+v (old %s new %s)", r, r.Old, r.New)
			}
			if tt.name != "malformed JSON" && r.ID == "" {
				t.Fatalf("reply without id: %+v", r)
			}
			calls := g.calls()
			if got := len(calls) - before; got != map[bool]int{true: 1, false: 0}[tt.wantGate] {
				t.Fatalf("%d gate calls", got)
			}
			if tt.wantGate {
				req := calls[len(calls)-1]
				var cmd map[string]any
				_ = json.Unmarshal([]byte(tt.in), &cmd)
				if req.Caller != "mqtt:"+cmd["user"].(string) || req.Path != cmd["path"] || req.IssuedAt.IsZero() {
					t.Fatalf("gate got %+v", req)
				}
			}
		})
	}
	st := c.Status()
	if st.State != "running" || st.Counters["received"] != uint64(len(tests)) || st.Counters["allowed"] != 1 ||
		st.Counters["failed"] != 1 || st.Counters["malformed"] != 4 || st.Counters["denied"] != 5 {
		t.Fatalf("status %+v", st)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Config{}, &fakeGate{}, nil); err == nil {
		t.Fatal("accepted an empty config")
	}
	if _, err := New(Config{Endpoint: mqttclient.Endpoint{URL: "tcp://127.0.0.1:1", ClientID: "x"}}, nil, nil); err == nil {
		t.Fatal("accepted a nil gate")
	}
}

// TestRunStopsWithoutBroker: Run retries against a dead broker and returns
// nil once ctx ends.
func TestRunStopsWithoutBroker(t *testing.T) {
	c, err := New(Config{Endpoint: mqttclient.Endpoint{URL: "tcp://127.0.0.1:1", ClientID: "x", ConnectTimeout: 200 * time.Millisecond}}, &fakeGate{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.State != "stopped" {
		t.Fatalf("state %s", st.State)
	}
}

func BenchmarkDecodeCommand(b *testing.B) {
	p := []byte(`{"path":"a/b","value":42.5,"user":"alice","issued_at":1764112800000,"reason":"r","id":"c1"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommand(p); err != nil {
			b.Fatal(err)
		}
	}
}
