package mqttcmd

import (
	"context"
	"errors"
	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/cmdproof/prooftest"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/security"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/writegate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// oneCaller is a valid proof block whose key is read from MQTTCMD_TEST_KEY.
var oneCaller = cmdproof.Config{Callers: []cmdproof.Caller{{Name: "alice", Key: conf.Secret{Env: "MQTTCMD_TEST_KEY"}, Role: security.Operator}}}

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
		{"minimal", Config{Endpoint: mqttclient.Endpoint{URL: "tcp://127.0.0.1:1883", ClientID: "w"}, Proof: oneCaller}, nil},
		{"empty", Config{}, []string{"url", "client_id", "callers: at least one"}},
		{"no callers", Config{Endpoint: mqttclient.Endpoint{URL: "tcp://127.0.0.1:1883", ClientID: "w"}}, []string{"callers"}},
		{"bad scheme and topic", Config{Endpoint: mqttclient.Endpoint{URL: "http://h:1", ClientID: "w", ConnectTimeout: -1}, Topic: "a//b", Proof: oneCaller},
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
		{"ms", `{"path":"a/b","value":42.5,"issued_at":1764112800000,"reason":"r","id":"c1"}`, "", model.Float(42.5), time.UnixMilli(ms)},
		{"rfc3339", `{"path":"a/b","value":true,"issued_at":"2025-11-25T23:20:00Z","id":"c2"}`, "", model.Bool(true), time.Date(2025, 11, 25, 23, 20, 0, 0, time.UTC)},
		{"int", `{"path":"a/b","value":-3,"issued_at":1,"id":"x"}`, "", model.Int(-3), time.UnixMilli(1)},
		{"not JSON", `write a/b 1`, "not a JSON object", model.Value{}, time.Time{}},
		{"unknown field", `{"path":"a/b","value":1,"issued_at":1,"id":"x","force":true}`, "unknown field", model.Value{}, time.Time{}},
		{"names its own user", `{"path":"a/b","value":1,"user":"alice","issued_at":1,"id":"x"}`, "unknown field", model.Value{}, time.Time{}},
		{"trailing", `{"path":"a/b","value":1,"issued_at":1,"id":"x"} {}`, "after the JSON", model.Value{}, time.Time{}},
		{"no id", `{"path":"a/b","value":1,"issued_at":1}`, "needs an id", model.Value{}, time.Time{}},
		{"no issued_at", `{"path":"a/b","value":1,"id":"x"}`, "needs issued_at", model.Value{}, time.Time{}},
		{"null issued_at", `{"path":"a/b","value":1,"id":"x","issued_at":null}`, "needs issued_at", model.Value{}, time.Time{}},
		{"fractional ms", `{"path":"a/b","value":1,"id":"x","issued_at":1.5}`, "integer unix", model.Value{}, time.Time{}},
		{"bad time", `{"path":"a/b","value":1,"id":"x","issued_at":"yesterday"}`, "RFC 3339", model.Value{}, time.Time{}},
		{"no value", `{"path":"a/b","id":"x","issued_at":1}`, "needs a value", model.Value{}, time.Time{}},
		{"array value", `{"path":"a/b","value":[1],"id":"x","issued_at":1}`, "bool, number or string", model.Value{}, time.Time{}},
		{"bad path", `{"path":"a//b","value":1,"id":"x","issued_at":1}`, "path", model.Value{}, time.Time{}},
		{"huge", `{"path":"a/b","value":"` + strings.Repeat("x", 20000) + `","id":"x","issued_at":1}`, "limit", model.Value{}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCommand([]byte(tt.in))
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if err == nil && (!c.Value.Equal(tt.val) || !c.IssuedAt.Equal(tt.at) || c.User != "") {
				t.Fatalf("decoded %+v", c)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"path":"a/b","value":42.5,"issued_at":1764112800000,"reason":"r","id":"c1"}`))
	f.Add([]byte(`{"path":"a/b","value":"x","id":"u","issued_at":"2025-11-25T23:20:00Z"}`))
	f.Add([]byte(`{"path":"","value":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if model.ValidatePath(c.Path) != nil || c.ID == "" || c.User != "" || c.IssuedAt.IsZero() || !c.Value.IsValid() || c.Value.Kind() == model.KindArray {
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

func TestNewRejects(t *testing.T) {
	if _, err := New(Config{}, &fakeGate{}, nil, nil); err == nil {
		t.Fatal("accepted an empty config")
	}
	if _, err := New(Config{Endpoint: mqttclient.Endpoint{URL: "tcp://127.0.0.1:1", ClientID: "x"}, Proof: oneCaller}, nil, nil, nil); err == nil {
		t.Fatal("accepted a nil gate")
	}
}

// TestRunStopsWithoutBroker: Run retries against a dead broker and returns
// nil once ctx ends.
func TestRunStopsWithoutBroker(t *testing.T) {
	t.Setenv("MQTTCMD_TEST_KEY", prooftest.AliceKeyHex)
	c, err := New(Config{Endpoint: mqttclient.Endpoint{URL: "tcp://127.0.0.1:1", ClientID: "x", ConnectTimeout: 200 * time.Millisecond}, Proof: oneCaller}, &fakeGate{}, nil, nil)
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
	p := []byte(`{"path":"a/b","value":42.5,"issued_at":1764112800000,"reason":"r","id":"c1"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommand(p); err != nil {
			b.Fatal(err)
		}
	}
}
