package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Shutdown stops sources first, then flushes everything buffered —
// including a batch that was in flight and fails once more — before Run
// returns and the sink is closed.
func TestShutdownFlushes(t *testing.T) {
	ev := &events{}
	release := make(gate)
	k := newSink("k")
	k.events = ev
	k.write = func(ctx context.Context, call int, _ []model.Sample) error {
		if call == 1 {
			if err := release.wait(ctx); err != nil {
				return err
			}
			return errors.New("lost the ack")
		}
		return nil
	}
	spec := memSink("k", k, 100, buffer.DropOldest)
	spec.BatchSize = 10
	src := newSource("s", batches("t/x", 50, 10)...)
	src.events = ev
	r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}}, Sinks: []SinkSpec{spec}})
	<-src.emitted
	k.waitFor(t, "the first write", func() bool { _, w, _ := k.calls(); return w >= 1 })

	r.cancel()
	<-src.stopped
	select {
	case err := <-r.done:
		t.Fatalf("Run returned (%v) with 50 samples still buffered", err)
	default:
	}
	if _, _, closes := k.calls(); closes != 0 {
		t.Fatal("sink closed before its buffer was drained")
	}
	close(release)
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	if got := values(k.received()); !slices.Equal(got, upTo(50)) {
		t.Fatalf("delivered %v, want 1..50 exactly once", got)
	}
	log := ev.snapshot()
	if log[0] != "source s stopped" || log[len(log)-1] != "sink k close" {
		t.Fatalf("events %v: want the source stopped first and the sink closed last", log)
	}
	if _, _, closes := k.calls(); closes != 1 {
		t.Fatalf("Close called %d times, want 1", closes)
	}
	st := r.Status()
	if st.Ready {
		t.Fatal("Ready after Run returned")
	}
	c := component(t, st, "sink", "k")
	if c.Buffer.Depth != 0 || c.Buffer.Acked != 50 || c.State != pipeline.StateStopped {
		t.Fatalf("sink status %+v, buffer %+v: want stopped and drained", c, *c.Buffer)
	}
	if s := component(t, st, "source", "s"); s.State != pipeline.StateStopped {
		t.Fatalf("source state %q, want stopped", s.State)
	}
}

// A connected sink that never succeeds cannot hold shutdown past
// DrainTimeout; what it did not take stays counted in its buffer.
func TestDrainDeadline(t *testing.T) {
	const drain = 150 * time.Millisecond
	never := make(gate) // never opened
	tests := []struct {
		name  string
		write func(context.Context, int, []model.Sample) error
		tried func(k *fakeSink) bool
	}{
		{"write always fails",
			func(context.Context, int, []model.Sample) error { return errors.New("nope") },
			func(k *fakeSink) bool { _, w, _ := k.calls(); return w >= 2 }},
		{"write blocks until cancelled",
			func(ctx context.Context, _ int, _ []model.Sample) error { return never.wait(ctx) },
			func(k *fakeSink) bool { _, w, _ := k.calls(); return w >= 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newSink("k")
			k.write = tt.write
			src := newSource("s", samples("t/x", 1, 5))
			r := start(t, Options{
				Sources:      []SourceSpec{{Name: "s", Source: src}},
				Sinks:        []SinkSpec{memSink("k", k, 10, buffer.DropOldest)},
				DrainTimeout: drain,
			})
			<-src.emitted
			k.waitFor(t, "the sink to be tried", func() bool { return tt.tried(k) })
			err, took := r.stop(t)
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			// A lower bound only: the drain must have been given its time.
			if took < drain {
				t.Fatalf("Run took %v after cancel, want at least the %v drain deadline", took, drain)
			}
			assertKept(t, r, k, pipeline.StateStopped)
		})
	}
}

// A sink that is not connected when the drain begins (never connected,
// connection lost, failed for good) does not hold shutdown: Run returns
// long before a one-hour drain timeout (stop fails the test after 15 s),
// and the samples stay in the sink's buffer.
func TestShutdownSkipsUnconnectedSink(t *testing.T) {
	never := make(gate) // never opened
	tests := []struct {
		name    string
		connect func(context.Context, int) error
		write   func(context.Context, int, []model.Sample) error
		tried   func(k *fakeSink) bool
		state   string
	}{
		{"write reports disconnected, reconnect fails", func(_ context.Context, call int) error {
			if call > 1 {
				return errors.New("broker down")
			}
			return nil
		},
			func(context.Context, int, []model.Sample) error { return pipeline.ErrDisconnected },
			func(k *fakeSink) bool { c, _, _ := k.calls(); return c >= 2 }, pipeline.StateStopped},
		{"connect always fails", func(context.Context, int) error { return errors.New("refused") }, nil,
			func(k *fakeSink) bool { c, _, _ := k.calls(); return c >= 2 }, pipeline.StateStopped},
		{"connect blocks until cancelled", func(ctx context.Context, _ int) error { return never.wait(ctx) }, nil,
			func(k *fakeSink) bool { c, _, _ := k.calls(); return c >= 1 }, pipeline.StateStopped},
		{"connect fails permanently", func(context.Context, int) error {
			return fmt.Errorf("sink k: CA file /etc/ca.pem: %w", pipeline.ErrPermanent)
		}, nil,
			func(k *fakeSink) bool { c, _, _ := k.calls(); return c >= 1 }, pipeline.StateFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newSink("k")
			k.connect, k.write = tt.connect, tt.write
			src := newSource("s", samples("t/x", 1, 5))
			r := start(t, Options{
				Sources:      []SourceSpec{{Name: "s", Source: src}},
				Sinks:        []SinkSpec{memSink("k", k, 10, buffer.DropOldest)},
				DrainTimeout: time.Hour,
			})
			<-src.emitted
			k.waitFor(t, "the sink to be tried", func() bool { return tt.tried(k) })
			if err, _ := r.stop(t); err != nil {
				t.Fatalf("Run = %v", err)
			}
			assertKept(t, r, k, tt.state)
		})
	}
}

// assertKept checks that the sink confirmed nothing, kept its 5 samples
// and was closed once.
func assertKept(t *testing.T, r *running, k *fakeSink, state string) {
	t.Helper()
	if n := k.count(); n != 0 {
		t.Fatalf("sink confirmed %d samples", n)
	}
	c := component(t, r.Status(), "sink", "k")
	if c.Buffer.Depth != 5 || c.Buffer.Acked != 0 || c.State != state {
		t.Fatalf("sink status %+v, buffer %+v: want %s with 5 samples left", c, *c.Buffer, state)
	}
	if _, _, closes := k.calls(); closes != 1 {
		t.Fatalf("Close called %d times, want 1", closes)
	}
}

// With the block policy a full buffer holds the source in Emit; shutdown
// must still get through: Emit returns ctx's error.
func TestBlockPolicyShutdown(t *testing.T) {
	never := make(gate)
	k := newSink("k")
	k.write = func(ctx context.Context, _ int, _ []model.Sample) error { return never.wait(ctx) }
	spec := memSink("k", k, 3, buffer.Block)
	spec.BatchSize = 1
	src := newSource("s", batches("t/x", 10, 1)...)
	r := start(t, Options{
		Sources:      []SourceSpec{{Name: "s", Source: src}},
		Sinks:        []SinkSpec{spec},
		DrainTimeout: 50 * time.Millisecond,
	})
	k.waitFor(t, "the first write", func() bool { _, w, _ := k.calls(); return w >= 1 })
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	errs := src.errs()
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("Emit errors %v, want one context.Canceled", errs)
	}
	if b := component(t, r.Status(), "sink", "k").Buffer; b.Depth != 3 || b.Dropped != 0 {
		t.Fatalf("buffer %+v, want depth=3 dropped=0", *b)
	}
}

// Run with an already cancelled ctx starts and stops cleanly and promptly.
func TestRunAlreadyCancelled(t *testing.T) {
	k := newSink("k")
	src := newSource("s")
	e, err := New(Options{
		Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks:   []SinkSpec{memSink("k", k, 10, buffer.DropOldest)},
		Backoff: tinyBackoff,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	began := time.Now()
	if err := e.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("Run took %v with nothing to drain", took)
	}
	if _, _, closes := k.calls(); closes != 1 {
		t.Fatalf("Close called %d times, want 1", closes)
	}
	// Emitting into a stopped engine fails instead of losing silently.
	if err := e.Emit(context.Background(), samples("t/x", 1, 1)); !errors.Is(err, buffer.ErrClosed) {
		t.Fatalf("Emit after Run = %v, want buffer.ErrClosed", err)
	}
	if err := e.Emit(context.Background(), nil); err != nil {
		t.Fatalf("empty Emit = %v", err)
	}
}

// closeErrSink fails Close; Run reports it, naming the sink.
type closeErrSink struct{ *fakeSink }

func (s closeErrSink) Close(ctx context.Context) error {
	_ = s.fakeSink.Close(ctx)
	return errors.New("close failed")
}

func TestRunReportsCloseError(t *testing.T) {
	k := closeErrSink{newSink("k")}
	r := start(t, Options{Sinks: []SinkSpec{{Name: "k", Sink: k, Buffer: buffer.NewMemory(1, "")}}})
	err, _ := r.stop(t)
	if err == nil || err.Error() != "close sink k: close failed" {
		t.Fatalf("Run = %v, want the close error naming the sink", err)
	}
}
