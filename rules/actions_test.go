package rules

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/writegate"
)

// fakeGate records requests and answers with err.
type fakeGate struct {
	reqs chan writegate.Request
	err  error
}

func (g *fakeGate) Write(_ context.Context, req writegate.Request) (writegate.Result, error) {
	g.reqs <- req
	return writegate.Result{}, g.err
}

func startRunner(t *testing.T, cfg ActionsConfig, gate Gate) (*Runner, chan error) {
	t.Helper()
	r, err := NewRunner(cfg, gate, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 16)
	r.SetObserver(func(_ Job, err error) { done <- err })
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, done
}

func TestRunnerWrites(t *testing.T) {
	tests := []struct {
		name    string
		gateErr error
		ok      string
	}{
		{"allowed", nil, "writes_ok"},
		{"denied", &writegate.DeniedError{Reason: "caller rule:x not allowed"}, "writes_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGate{reqs: make(chan writegate.Request, 1), err: tt.gateErr}
			r, done := startRunner(t, ActionsConfig{Workers: 1}, g)
			req := writegate.Request{Path: "a/sp", Value: model.Float(80), Caller: "rule:x", IssuedAt: t0}
			if !r.Enqueue(Job{Rule: "x", Write: &req}) {
				t.Fatal("not queued")
			}
			if err := <-done; !errors.Is(err, tt.gateErr) {
				t.Fatalf("err = %v", err)
			}
			if got := <-g.reqs; got.Path != req.Path || got.Caller != "rule:x" || !got.IssuedAt.Equal(t0) {
				t.Fatalf("gate saw %+v", got)
			}
			if st := r.Status(); st.Counters[tt.ok] != 1 {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

func TestRunnerCloseDropsQueued(t *testing.T) {
	r, err := NewRunner(ActionsConfig{QueueSize: 3}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		r.Enqueue(Job{Rule: "x", Write: &writegate.Request{}})
	}
	r.Close()
	r.Close()
	if st := r.Status(); st.Counters["queued"] != 3 || st.Counters["dropped"] != 5 {
		t.Fatalf("status %+v", st)
	}
	if err := r.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

func TestRunnerHTTP(t *testing.T) {
	type seen struct {
		method, body, ctype, custom string
	}
	got := make(chan seen, 4)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, string(b), r.Header.Get("Content-Type"), r.Header.Get("X-Source")}
		if strings.Contains(r.URL.Path, "fail") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(handler)
	defer tlsSrv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	r, done := startRunner(t, ActionsConfig{Workers: 1, HTTPTimeout: 5 * time.Second, TLS: tlsconf.Config{CAFile: ca}}, nil)

	tests := []struct {
		name    string
		action  HTTPAction
		wantErr string
		check   func(seen) bool
	}{
		{"default body", HTTPAction{URL: plain.URL + "/hook", Method: "POST", Headers: map[string]string{"X-Source": "weir"}}, "",
			func(s seen) bool {
				var b struct{ Rule, Edge string }
				return json.Unmarshal([]byte(s.body), &b) == nil && b.Rule == "hot" && b.Edge == "rise" && s.custom == "weir" && s.ctype == "application/json"
			}},
		{"own body over TLS", HTTPAction{URL: tlsSrv.URL + "/hook", Method: "PUT", Body: `{"x":1}`}, "",
			func(s seen) bool { return s.method == "PUT" && s.body == `{"x":1}` }},
		{"status 500 fails", HTTPAction{URL: plain.URL + "/fail", Method: "POST"}, "status 500", func(seen) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.Enqueue(Job{Rule: "hot", HTTP: &HTTPCall{Action: tt.action, Edge: "rise", Time: t0}})
			err := <-done
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if s := <-got; !tt.check(s) {
				t.Fatalf("server saw %+v", s)
			}
		})
	}
	if st := r.Status(); st.Counters["http_ok"] != 2 || st.Counters["http_failed"] != 1 {
		t.Fatalf("status %+v", st)
	}
}

// blockGate holds every write until release is closed or ctx ends.
type blockGate struct{ release chan struct{} }

func (g blockGate) Write(ctx context.Context, _ writegate.Request) (writegate.Result, error) {
	select {
	case <-g.release:
		return writegate.Result{}, nil
	case <-ctx.Done():
		return writegate.Result{}, ctx.Err()
	}
}

// Drain runs what was queued before it closes the runner; a deadline
// bounds it, the rest is dropped and counted.
func TestRunnerDrain(t *testing.T) {
	for _, tt := range []struct {
		name             string
		release          bool
		ok, failed, drop uint64
	}{
		{"finishes the queue", true, 3, 0, 0},
		{"bounded by ctx", false, 0, 1, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := blockGate{release: make(chan struct{})}
			r, err := NewRunner(ActionsConfig{Workers: 1}, g, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				r.Enqueue(Job{Rule: "x", Write: &writegate.Request{}})
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			if !tt.release {
				ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
			}
			defer cancel()
			if tt.release {
				close(g.release)
			}
			r.Drain(ctx)
			st := r.Status()
			if st.Counters["writes_ok"] != tt.ok || st.Counters["writes_failed"] != tt.failed || st.Counters["dropped"] != tt.drop {
				t.Fatalf("status %+v", st.Counters)
			}
			if r.Enqueue(Job{Rule: "x"}) {
				t.Fatal("a drained runner queues")
			}
		})
	}
}
