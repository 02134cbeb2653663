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
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/latency"
	"github.com/weir-edge/weir/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeStatus struct{ ready atomic.Bool }

func (f *fakeStatus) Ready() bool { return f.ready.Load() }

func (f *fakeStatus) Status() engine.Status {
	var why []string
	if !f.ready.Load() {
		why = []string{"every sink is down: sink uns is retrying (broker gone)"}
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	return engine.Status{
		Ready:    f.ready.Load(),
		NotReady: why,
		Emitted:  42,
		Components: []engine.ComponentStatus{
			{Kind: "source", Up: true, Status: pipeline.Status{
				Name: "plc", State: pipeline.StateRunning, ChildSums: true,
				Counters: map[string]uint64{"requests": 10, "restarts": 1},
				Children: []pipeline.Status{
					{Name: "dev1", State: pipeline.StateRunning, Counters: map[string]uint64{"requests": 6}, Gauges: map[string]float64{"last_cycle_seconds": 0.01}},
					{Name: "dev-2", State: pipeline.StateRetrying, Counters: map[string]uint64{"requests": 4}},
				},
			}},
			{Kind: "sink", Status: pipeline.Status{Name: "uns", State: pipeline.StateRetrying, LastError: "broker gone", LastErrorAt: at,
				Counters: map[string]uint64{"samples_written": 40, "samples": 40, "births": 2, "samples_rejected": 3}},
				Buffer:  &buffer.Stats{Depth: 2, Capacity: 100, Dropped: 3, DroppedFull: 3, Bytes: 640, OldestEdgeTime: 1, Acked: 40},
				Latency: &engine.LatencyStats{Count: 40, P50ms: 1, P99ms: 5, Buckets: latencyBuckets()},
				DeadLetters: &engine.DeadLetterStatus{Rejected: map[string]uint64{"malformed": 1, "invalid_name": 2, "oversize": 0},
					Held: map[string]int{"malformed": 1, "invalid_name": 2}, Bytes: 90, Dropped: 0}},
			{Kind: "sink", Status: pipeline.Status{Name: "hist", State: "publishing"}, Up: true},
			{Kind: "source", Status: pipeline.Status{Name: "spb", State: pipeline.StateRunning, Children: []pipeline.Status{
				{Name: "edge1", State: "online"}, {Name: "edge2", State: pipeline.StateOffline}}}, Up: true},
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
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable ||
		body != "not ready\nevery sink is down: sink uns is retrying (broker gone)\n" {
		t.Fatalf("/readyz before ready = %d %q, want 503 saying why", code, body)
	}
	src.ready.Store(true)
	if code, body := get(t, h, "/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz when ready = %d %q", code, body)
	}

	code, body := get(t, h, "/status")
	var st struct {
		Node       string                   `json:"node"`
		Components []map[string]interface{} `json:"components"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Node != "edge-1" || len(st.Components) != 4 ||
		st.Components[1]["last_error_at"] != "2030-01-01T00:00:00Z" || st.Components[1]["up"] != false {
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
		`weir_component_up{kind="sink",name="hist"} 1`,
		`weir_component_state{kind="sink",name="uns",state="retrying"} 1`,
		`weir_component_state{kind="sink",name="uns",state="running"} 0`,
		`weir_component_state{kind="sink",name="hist",state="publishing"} 1`,
		`weir_component_last_error_timestamp_seconds{kind="sink",name="uns"} 1.893456e+09`,
		`weir_component_child_up{child="dev1",kind="source",name="plc"} 1`,
		`weir_component_child_up{child="dev-2",kind="source",name="plc"} 0`,
		`weir_component_child_up{child="edge1",kind="source",name="spb"} 1`,
		`weir_component_child_up{child="edge2",kind="source",name="spb"} 0`,
		`weir_source_restarts_total{name="plc"} 1`,
		`weir_source_child_requests_total{child="dev1",name="plc"} 6`,
		`weir_source_child_requests_total{child="dev-2",name="plc"} 4`,
		`weir_sink_samples_written_total{name="uns"} 40`,
		`weir_sink_buffer_dropped_samples_total{cause="full",name="uns"} 3`,
		`weir_sink_buffer_dropped_samples_total{cause="age",name="uns"} 0`,
		`weir_sink_buffer_depth_bytes{name="uns"} 640`,
		`weir_sink_buffer_oldest_age_seconds{name="uns"}`,
		`weir_sink_latency_seconds_bucket{name="uns",le="0.001"} 1`,
		`weir_sink_latency_seconds_bucket{name="uns",le="+Inf"} 2`,
		`weir_sink_latency_seconds_count{name="uns"} 2`,
		`weir_pipeline_samples_emitted_total 42`,
		`weir_sink_refused_samples_total{cause="malformed",name="uns"} 1`,
		`weir_sink_refused_samples_total{cause="oversize",name="uns"} 0`,
		`weir_sink_dead_letter_samples{cause="invalid_name",name="uns"} 2`,
		`weir_sink_dead_letter_bytes{name="uns"} 90`,
		`weir_sink_dead_letter_dropped_samples_total{name="uns"} 0`,
		`weir_sink_dead_letter_lost_samples_total{name="uns"} 0`,
		`# HELP weir_sink_refused_samples_total Samples the destination refused for good, by cause`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Nothing counted twice: the parent's sum of its devices, the buffer's
	// total of the by-cause drops and its acks, a sink's own count of
	// confirmed samples, Sparkplug's births = nbirths + dbirths.
	for _, dup := range []string{
		`weir_source_requests_total`,
		`weir_sink_buffer_dropped_samples_total{name="uns"}`,
		`weir_sink_buffer_acked`,
		`weir_sink_samples_total`,
		`weir_sink_births_total`,
		`weir_sink_samples_rejected_total`,
		`latency_p50`, `latency_p99`,
	} {
		if strings.Contains(body, dup) {
			t.Errorf("/metrics has %q", dup)
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

// latencyBuckets holds two observations: 1 ms and 1 h.
func latencyBuckets() latency.Buckets {
	var h latency.Histogram
	h.Record(time.Millisecond)
	h.Record(time.Hour)
	return h.Buckets()
}
