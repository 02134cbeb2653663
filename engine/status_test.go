package engine

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Status merges the engine's view with what a component reports itself,
// and reports latency and uptime on the injected clock.
func TestStatus(t *testing.T) {
	clock := &fakeClock{}
	clock.ns.Store(t0 + int64(100*time.Millisecond))
	own := map[string]uint64{"published": 7}
	var ownState atomic.Value
	ownState.Store("publishing")
	k := newSink("k")
	k.status = func() pipeline.Status {
		return pipeline.Status{State: ownState.Load().(string), Counters: own, Gauges: map[string]float64{"inflight": 2}}
	}
	// The worker acks a batch before it writes the next, so a second Write
	// held at a gate is the point where the first batch's numbers are final.
	second := make(gate)
	k.write = func(ctx context.Context, call int, _ []model.Sample) error {
		if call == 2 {
			return second.wait(ctx)
		}
		return nil
	}
	spec := memSink("k", k, 10, buffer.DropOldest)
	spec.BatchSize = 4
	src := newSource("s", samples("t/x", 1, 4), samples("t/x", 5, 1)) // taken at t0+1ms..t0+5ms
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks:   []SinkSpec{spec},
		Now:     clock.Now,
	})
	k.waitFor(t, "the second write", func() bool { _, w, _ := k.calls(); return w >= 2 })
	clock.ns.Add(int64(2 * time.Second))

	st := r.Status()
	if !st.Ready || st.Emitted != 5 || st.Filtered != 0 {
		t.Fatalf("status %+v, want ready with 5 emitted", st)
	}
	if math.Abs(st.Uptime-2) > 1e-9 {
		t.Fatalf("uptime = %v s, want 2 s on the injected clock", st.Uptime)
	}
	if len(st.Components) != 2 {
		t.Fatalf("%d components, want 2", len(st.Components))
	}
	if s := component(t, st, "source", "s"); s.State != pipeline.StateRunning || s.Counters["restarts"] != 0 || s.LastError != "" {
		t.Fatalf("source status %+v", s)
	}
	c := component(t, st, "sink", "k")
	if c.State != "publishing" {
		t.Fatalf("sink state %q: a running component's finer state should win", c.State)
	}
	want := map[string]uint64{"published": 7, "samples_written": 4, "batches_written": 1, "write_errors": 0, "connects": 1, "samples_rejected": 0, "samples_replayed": 0}
	if len(c.Counters) != len(want) {
		t.Fatalf("counters %v, want %v", c.Counters, want)
	}
	for key, v := range want {
		if c.Counters[key] != v {
			t.Fatalf("counters %v, want %v", c.Counters, want)
		}
	}
	if len(own) != 1 {
		t.Fatalf("the engine wrote into the component's own counters: %v", own)
	}
	if c.Gauges["inflight"] != 2 {
		t.Fatalf("gauges %v lost", c.Gauges)
	}
	if c.Buffer == nil || c.Buffer.Acked != 4 || c.Buffer.Depth != 1 || c.Buffer.Capacity != 10 {
		t.Fatalf("buffer %+v", c.Buffer)
	}
	// Latency is sample taken → sink confirmed: 96..99 ms here.
	l := c.Latency
	if l == nil || l.Count != 4 || l.Maxms != 99 || l.P50ms < 96*0.93 || l.P50ms > 99*1.07 || l.P99ms < l.P50ms {
		t.Fatalf("latency %+v, want 4 samples of 96..99 ms", l)
	}
	if d, n, ok := r.SinkLatency("k", 1); !ok || n != 4 || d != 99*time.Millisecond {
		t.Fatalf("SinkLatency(k, 1) = %v, %d, %v", d, n, ok)
	}
	if _, _, ok := r.SinkLatency("nope", 0.5); ok {
		t.Fatal("SinkLatency of an unknown sink reported ok")
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatalf("status does not marshal: %v", err)
	}

	close(second)
	k.waitCount(t, 5)
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	st = r.Status()
	if st.Ready {
		t.Fatal("ready after Run returned")
	}
	// Once stopped, the engine's view wins over the component's.
	if c := component(t, st, "sink", "k"); c.State != pipeline.StateStopped {
		t.Fatalf("sink state %q after Run, want stopped", c.State)
	}
	if s := component(t, st, "source", "s"); s.State != pipeline.StateStopped {
		t.Fatalf("source state %q after Run, want stopped", s.State)
	}
}

// A component's own LastError wins over the engine's record; its time is
// the component's own, else the engine's for the same error, else when the
// engine first saw it (stable across snapshots).
func TestStatusOwnLastError(t *testing.T) {
	ownAt := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var own atomic.Value
	own.Store(pipeline.Status{LastError: "own words", LastErrorAt: ownAt})
	k := newSink("k")
	k.status = func() pipeline.Status { return own.Load().(pipeline.Status) }
	h := &health{}
	h.setState(pipeline.StateRetrying, errFake("engine words"))
	_, _, engineAt := h.snapshot()

	c := componentStatus("sink", "k", k, h)
	if c.LastError != "own words" || !c.LastErrorAt.Equal(ownAt) || c.State != pipeline.StateRetrying || c.Name != "k" {
		t.Fatalf("status %+v", c)
	}
	own.Store(pipeline.Status{LastError: "engine words"})
	if c := componentStatus("sink", "k", k, h); !c.LastErrorAt.Equal(engineAt) {
		t.Fatalf("same error as the engine's: at %v, want the engine's %v", c.LastErrorAt, engineAt)
	}
	own.Store(pipeline.Status{LastError: "timeless"})
	first := componentStatus("sink", "k", k, h).LastErrorAt
	if first.IsZero() || !componentStatus("sink", "k", k, h).LastErrorAt.Equal(first) {
		t.Fatalf("an error without a time: first seen %v, not stable", first)
	}
	c = componentStatus("sink", "k", newSink("plain"), h)
	if c.LastError != "engine words" || !c.LastErrorAt.Equal(engineAt) || c.Counters == nil {
		t.Fatalf("status %+v", c)
	}
}

type errFake string

func (e errFake) Error() string { return string(e) }

// Status may be polled (by the HTTP API) before and while Run starts. The
// race detector sees an unsynchronised start only in a small window, so the
// start is repeated.
func TestStatusConcurrentWithRun(t *testing.T) {
	for range 20 {
		k := newSink("k")
		src := newSource("s", samples("t/x", 1, 3))
		e, err := New(Options{
			Sources: []SourceSpec{{Name: "s", Source: src}},
			Sinks:   []SinkSpec{memSink("k", k, 10, buffer.DropOldest)},
			Backoff: tinyBackoff,
		})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		polling := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
					_ = e.Status()
					if i == 0 {
						close(polling)
					}
				}
			}
		})
		<-polling
		ctx, cancel := context.WithCancel(context.Background())
		r := &running{Engine: e, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- e.Run(ctx) }()
		k.waitCount(t, 3)
		err, _ = r.stop(t)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	}
}
