package opcua

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sim"
	simopcua "github.com/weir-edge/weir/sim/opcua"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLog() *slog.Logger {
	if os.Getenv("WEIR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// recorder is a pipeline.Emitter that keeps every sample, by path, and
// wakes waiters on each batch.
type recorder struct {
	mu       sync.Mutex
	byPath   map[string][]model.Sample
	batches  int
	maxBatch int
	notify   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{byPath: map[string][]model.Sample{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) Emit(_ context.Context, batch []model.Sample) error {
	r.mu.Lock()
	for _, s := range batch {
		r.byPath[s.Path] = append(r.byPath[s.Path], s)
	}
	r.batches++
	r.maxBatch = max(r.maxBatch, len(batch))
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

// largestBatch is the size of the largest batch emitted so far.
func (r *recorder) largestBatch() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxBatch
}

func (r *recorder) samples(path string) []model.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]model.Sample(nil), r.byPath[path]...)
}

func (r *recorder) count(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byPath[path])
}

func (r *recorder) paths() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byPath)
}

// waitFor blocks until cond holds, re-checking after every batch.
func (r *recorder) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = max(timeout, hangBound) // the caller's figure is how long it should take; fail only on a hang
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-r.notify:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// last is the newest sample of path; it fails the test when there is none.
func (r *recorder) last(t testing.TB, path string) model.Sample {
	t.Helper()
	s := r.samples(path)
	if len(s) == 0 {
		t.Fatalf("no sample for %s", path)
	}
	return s[len(s)-1]
}

// startSource runs src until the test ends and checks that Run returns
// nil promptly after cancellation.
func startSource(t testing.TB, src *Source, out *recorder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(2 * time.Minute):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// serveSim starts the OPC UA simulator on a free port.
func serveSim(t testing.TB, opts simopcua.Options) *simopcua.Server {
	t.Helper()
	s, err := simopcua.Serve(context.Background(), "127.0.0.1:0", sim.NewPlant(sim.PlantOptions{Seed: 7}), opts, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustNew(t testing.TB, cfg Config) *Source {
	t.Helper()
	s, err := New(cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// insecure is a config for the simulator without security.
func insecure(endpoint string) Config {
	return Config{Endpoint: endpoint, SecurityPolicy: "None", Namespace: "plant", WatchdogInterval: 2 * time.Second, RequestTimeout: 3 * time.Second}
}

// hangBound is the least a wait allows before it fails: on a loaded CI
// machine things take many times longer than here, and a wait bounds a
// hang, never a speed.
const hangBound = 2 * time.Minute
