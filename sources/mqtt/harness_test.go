package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
)

// waitTimeout bounds every wait for something to happen over the network.
const waitTimeout = 10 * time.Second

// collector is a pipeline.Emitter that records every sample.
type collector struct {
	mu      sync.Mutex
	samples []model.Sample
	batches int
	notify  chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) Emit(_ context.Context, batch []model.Sample) error {
	c.mu.Lock()
	c.samples = append(c.samples, batch...)
	c.batches++
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) snapshot() []model.Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]model.Sample(nil), c.samples...)
}

// waitN waits until at least n samples have been emitted and returns them.
func (c *collector) waitN(t testing.TB, n int) []model.Sample {
	t.Helper()
	return c.waitFor(t, fmt.Sprintf("%d samples", n), func(s []model.Sample) bool { return len(s) >= n })
}

func (c *collector) waitFor(t testing.TB, what string, cond func([]model.Sample) bool) []model.Sample {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		s := c.snapshot()
		if cond(s) {
			return s
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; got %d samples:\n%s", what, len(s), dumpSamples(s))
		}
	}
}

func dumpSamples(ss []model.Sample) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "  %s = %s (%s) ts=%d hist=%v\n", s.Path, s.Value, s.Quality, s.SourceTime, s.Historical)
	}
	return b.String()
}

// byPath returns the last sample of each path.
func byPath(ss []model.Sample) map[string]model.Sample {
	m := make(map[string]model.Sample, len(ss))
	for _, s := range ss {
		m[s.Path] = s
	}
	return m
}

// runSource builds and runs a source until the test ends.
func runSource(t testing.TB, cfg Config, out *collector, opts ...func(*Source)) *Source {
	t.Helper()
	s, _ := startSource(t, cfg, out, opts...)
	return s
}

// runSourceStoppable is runSource that also returns a function stopping
// the source and waiting for Run to return (idempotent).
func runSourceStoppable(t testing.TB, cfg Config, out *collector, opts ...func(*Source)) func() {
	t.Helper()
	_, stop := startSource(t, cfg, out, opts...)
	return stop
}

func startSource(t testing.TB, cfg Config, out *collector, opts ...func(*Source)) (*Source, func()) {
	t.Helper()
	s, err := New(cfg, testLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.policy.Initial, s.policy.Max = 10*time.Millisecond, 100*time.Millisecond
	for _, o := range opts {
		o(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// fixedClock is the arrival time tests see.
var fixedClock = time.Date(2024, 11, 25, 21, 0, 0, 0, time.UTC)

func withClock(s *Source) { s.now = func() time.Time { return fixedClock } }

// dialCounter wraps the source's dial function and reports every attempt
// (nil error for a success).
func dialCounter(ch chan<- error) func(*Source) {
	return func(s *Source) {
		inner := s.dial
		s.dial = func(ctx context.Context, o mqttclient.Options) (mqttclient.Conn, error) {
			c, err := inner(ctx, o)
			select {
			case ch <- err:
			default:
			}
			return c, err
		}
	}
}

// testLogger discards logs unless WEIR_TEST_LOG=1.
func testLogger() *slog.Logger {
	if os.Getenv("WEIR_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
