package api

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeStatus struct{ ready atomic.Bool }

func (f *fakeStatus) Ready() bool { return f.ready.Load() }

func (f *fakeStatus) Status() engine.Status {
	return engine.Status{
		Ready:   f.ready.Load(),
		Emitted: 42,
		Components: []engine.ComponentStatus{
			{Kind: "source", Status: pipeline.Status{
				Name: "plc", State: pipeline.StateRunning,
				Counters: map[string]uint64{"requests": 10},
				Children: []pipeline.Status{
					{Name: "dev1", Counters: map[string]uint64{"requests": 6}, Gauges: map[string]float64{"last_cycle_seconds": 0.01}},
					{Name: "dev-2", Counters: map[string]uint64{"requests": 4}},
				},
			}},
			{Kind: "sink", Status: pipeline.Status{Name: "uns", State: pipeline.StateRetrying, LastError: "broker gone",
				Counters: map[string]uint64{"samples_written": 40}},
				Buffer:  &buffer.Stats{Depth: 2, Capacity: 100, Dropped: 3, DroppedFull: 3, Bytes: 640, OldestEdgeTime: 1},
				Latency: &engine.LatencyStats{Count: 40, P50ms: 1, P99ms: 5}},
		},
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestEndpoints(t *testing.T) {
	src := &fakeStatus{}
	h := New(Options{Status: src, NodeID: "edge-1", Version: "test"}).Handler()

	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, _ := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before ready = %d, want 503", code)
	}
	src.ready.Store(true)
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("/readyz when ready = %d", code)
	}

	code, body := get(t, h, "/status")
	var st struct {
		Node       string                   `json:"node"`
		Components []map[string]interface{} `json:"components"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Node != "edge-1" || len(st.Components) != 2 {
		t.Fatalf("/status = %d %s", code, body)
	}

	code, body = get(t, h, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d: %s", code, body)
	}
	for _, want := range []string{
		`weir_build_info{node="edge-1",version="test"} 1`,
		`weir_component_up{kind="sink",name="uns"} 0`,
		`weir_component_up{kind="source",name="plc"} 1`,
		`weir_source_requests_total{name="plc"} 10`,
		`weir_source_child_requests_total{child="dev1",name="plc"} 6`,
		`weir_source_child_requests_total{child="dev-2",name="plc"} 4`,
		`weir_sink_buffer_dropped_samples_total{name="uns"} 3`,
		`weir_sink_buffer_dropped_by_cause_samples_total{cause="full",name="uns"} 3`,
		`weir_sink_buffer_depth_bytes{name="uns"} 640`,
		`weir_sink_buffer_oldest_age_seconds{name="uns"}`,
		`weir_sink_buffer_acked_samples_total{name="uns"} 0`,
		`weir_sink_latency_p99_seconds{name="uns"} 0.005`,
		`weir_pipeline_samples_emitted_total 42`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _ := get(t, h, "/nope"); code != 404 {
		t.Fatalf("unknown path = %d", code)
	}
}

func TestMiddlewareWrapsEveryHandler(t *testing.T) {
	h := New(Options{Status: &fakeStatus{}, Middleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}}).Handler()
	for _, p := range []string{"/metrics", "/status", "/healthz", "/readyz"} {
		if code, _ := get(t, h, p); code != http.StatusUnauthorized {
			t.Errorf("%s = %d, want 401 from the middleware", p, code)
		}
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(Options{Status: &fakeStatus{}}).Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}
