package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNew(t *testing.T) {
	src := newSource("s")
	snk := newSink("k")
	buf := buffer.NewMemory(1, "")
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"empty graph", Options{}, ""},
		{"source and sink may share a name", Options{
			Sources: []SourceSpec{{Name: "x", Source: src}},
			Sinks:   []SinkSpec{{Name: "x", Sink: snk, Buffer: buf}},
		}, ""},
		{"source without name", Options{Sources: []SourceSpec{{Source: src}}}, "needs a name"},
		{"source without implementation", Options{Sources: []SourceSpec{{Name: "s"}}}, "needs a name"},
		{"duplicate source", Options{Sources: []SourceSpec{{Name: "s", Source: src}, {Name: "s", Source: src}}}, `duplicate source name "s"`},
		{"sink without name", Options{Sinks: []SinkSpec{{Sink: snk, Buffer: buf}}}, "needs a name"},
		{"sink without implementation", Options{Sinks: []SinkSpec{{Name: "k", Buffer: buf}}}, "needs a name"},
		{"sink without buffer", Options{Sinks: []SinkSpec{{Name: "k", Sink: snk}}}, "buffer"},
		{"duplicate sink", Options{Sinks: []SinkSpec{{Name: "k", Sink: snk, Buffer: buf}, {Name: "k", Sink: snk, Buffer: buf}}}, `duplicate sink name "k"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(tt.opts)
			if tt.wantErr == "" {
				if err != nil || e == nil {
					t.Fatalf("New = %v, %v; want an engine", e, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// Every sample reaches every sink once, in order, with increasing Seq, and
// all sinks see the same order.
func TestDeliveryInOrder(t *testing.T) {
	const perSource = 100
	var sources []SourceSpec
	for i := range 3 {
		name := fmt.Sprintf("s%d", i)
		sources = append(sources, SourceSpec{Name: name, Source: newSource(name, batches("tag/"+name, perSource, 5)...)})
	}
	a, b := newSink("a"), newSink("b")
	sinkA := memSink("a", a, 1000, buffer.Block)
	sinkA.BatchSize = 7
	r := start(t, Options{Sources: sources, Sinks: []SinkSpec{sinkA, memSink("b", b, 1000, buffer.DropNewest)}})
	a.waitCount(t, 3*perSource)
	b.waitCount(t, 3*perSource)
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	gotA, gotB := a.received(), b.received()
	if len(gotA) != 3*perSource || len(gotB) != 3*perSource {
		t.Fatalf("got %d and %d samples, want %d each", len(gotA), len(gotB), 3*perSource)
	}
	if !slices.Equal(seqs(gotA), seqs(gotB)) {
		t.Fatal("sinks saw different orders")
	}
	// Nothing filtered: the Seqs are exactly 1..n.
	for i, s := range seqs(gotA) {
		if s != uint64(i+1) {
			t.Fatalf("sample %d has Seq %d, want %d", i, s, i+1)
		}
	}
	perTag := map[string][]int64{}
	for _, s := range gotA {
		perTag[s.Path] = append(perTag[s.Path], s.Value.AsInt())
	}
	for tag, vals := range perTag {
		if !slices.Equal(vals, upTo(perSource)) {
			t.Errorf("%s: values %v, want 1..%d in order", tag, vals, perSource)
		}
	}
	for _, k := range []*fakeSink{a, b} {
		if _, writes, closes := k.calls(); closes != 1 || writes == 0 {
			t.Errorf("sink %s: %d writes, %d closes; want some writes and one close", k.name, writes, closes)
		}
	}
	for _, s := range sources {
		if errs := s.Source.(*fakeSource).errs(); len(errs) > 0 {
			t.Errorf("source %s: Emit errors %v", s.Name, errs)
		}
	}
	if st := r.Status(); st.Emitted != 3*perSource || st.Filtered != 0 {
		t.Errorf("status emitted=%d filtered=%d, want %d and 0", st.Emitted, st.Filtered, 3*perSource)
	}
}

// Sources may emit before a sink has connected: the buffer exists from the
// start, so the very first batch waits there instead of being lost.
func TestFirstBatchWaitsForConnect(t *testing.T) {
	connected := make(gate)
	k := newSink("k")
	k.connect = func(ctx context.Context, call int) error { return connected.wait(ctx) }
	src := newSource("s", batches("t/x", 10, 3)...)
	r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}}, Sinks: []SinkSpec{memSink("k", k, 100, buffer.DropOldest)}})
	<-src.emitted
	k.waitFor(t, "the connect attempt", func() bool { c, _, _ := k.calls(); return c >= 1 })
	if n := k.count(); n != 0 {
		t.Fatalf("sink got %d samples before it connected", n)
	}
	if d := component(t, r.Status(), "sink", "k").Buffer.Depth; d != 10 {
		t.Fatalf("buffer depth = %d before connect, want 10", d)
	}
	if st := component(t, r.Status(), "sink", "k").State; st != pipeline.StateConnecting {
		t.Fatalf("sink state = %q, want %q", st, pipeline.StateConnecting)
	}
	close(connected)
	k.waitCount(t, 10)
	if got := values(k.received()); !slices.Equal(got, upTo(10)) {
		t.Fatalf("values %v, want 1..10", got)
	}
	if got := k.received()[0].Seq; got != 1 {
		t.Fatalf("first sample Seq = %d, want 1", got)
	}
}

// A failed Write keeps the batch: the same samples are offered again and
// delivered exactly once more (at-least-once, no loss, no extra copies).
func TestWriteFailureRetried(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name         string
		fail         func() error // what a failing Write does
		failures     int
		wantConnects int // successful connects
	}{
		{"error once", func() error { return errBoom }, 1, 1},
		{"error thrice", func() error { return errBoom }, 3, 1},
		{"disconnected reconnects", func() error { return fmt.Errorf("publish: %w", pipeline.ErrDisconnected) }, 1, 2},
		{"disconnected twice", func() error { return fmt.Errorf("publish: %w", pipeline.ErrDisconnected) }, 2, 3},
		{"panic is a failure", func() error { panic("sink bug") }, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newSink("k")
			k.write = func(_ context.Context, call int, _ []model.Sample) error {
				if call <= tt.failures {
					return tt.fail()
				}
				return nil
			}
			src := newSource("s", samples("t/x", 1, 5))
			r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}}, Sinks: []SinkSpec{memSink("k", k, 100, buffer.DropOldest)}})
			k.waitCount(t, 5)
			if err, _ := r.stop(t); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if got := values(k.received()); !slices.Equal(got, upTo(5)) {
				t.Fatalf("delivered %v, want 1..5 exactly once", got)
			}
			k.mu.Lock()
			attempts := slices.Clone(k.attempts)
			connects := k.connectCalls
			k.mu.Unlock()
			if len(attempts) != tt.failures+1 {
				t.Fatalf("%d Write calls, want %d", len(attempts), tt.failures+1)
			}
			for i, a := range attempts {
				if !slices.Equal(a, []uint64{1, 2, 3, 4, 5}) {
					t.Fatalf("attempt %d carried Seqs %v, want the same batch 1..5", i+1, a)
				}
			}
			if connects != tt.wantConnects {
				t.Fatalf("Connect called %d times, want %d", connects, tt.wantConnects)
			}
			c := component(t, r.Status(), "sink", "k")
			if c.Counters["write_errors"] != uint64(tt.failures) || c.Counters["samples_written"] != 5 ||
				c.Counters["connects"] != uint64(tt.wantConnects) {
				t.Fatalf("counters %v, want write_errors=%d samples_written=5 connects=%d", c.Counters, tt.failures, tt.wantConnects)
			}
			if c.Buffer.Redelivered != uint64(5*tt.failures) || c.Buffer.Acked != 5 || c.Buffer.Depth != 0 {
				t.Fatalf("buffer %+v, want redelivered=%d acked=5 depth=0", *c.Buffer, 5*tt.failures)
			}
			if c.LastError == "" || c.LastErrorAt.IsZero() {
				t.Fatalf("status %+v: the write failure is not reported", c)
			}
		})
	}
}

// Connect is retried with backoff until it succeeds; a panic counts as a
// failure.
func TestConnectRetried(t *testing.T) {
	tests := []struct {
		name    string
		fail    func() error
		wantErr string
	}{
		{"error", func() error { return errors.New("broker refused") }, "broker refused"},
		{"panic", func() error { panic("connect bug") }, "connect bug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const failures = 4
			k := newSink("k")
			k.connect = func(_ context.Context, call int) error {
				if call <= failures {
					return tt.fail()
				}
				return nil
			}
			src := newSource("s", samples("t/x", 1, 3))
			r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}}, Sinks: []SinkSpec{memSink("k", k, 10, buffer.DropOldest)}})
			k.waitCount(t, 3)
			connects, _, _ := k.calls()
			if connects != failures+1 {
				t.Fatalf("Connect called %d times, want %d", connects, failures+1)
			}
			c := component(t, r.Status(), "sink", "k")
			if c.Counters["connects"] != 1 || !strings.Contains(c.LastError, tt.wantErr) || c.State != pipeline.StateRunning {
				t.Fatalf("status %+v, want connects=1, running, last error containing %q", c, tt.wantErr)
			}
		})
	}
}

// A source that panics, fails or returns early is restarted with backoff
// and the process survives.
func TestSourceRestarted(t *testing.T) {
	tests := []struct {
		name    string
		fail    func() error
		wantErr string
	}{
		{"panic", func() error { panic("source bug") }, "panic: source bug"},
		{"error", func() error { return errors.New("device gone") }, "device gone"},
		{"returns nil early", func() error { return errReturnNil }, "returned before shutdown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const failures = 3
			src := newSource("s", samples("t/x", 1, 4))
			src.before = func(run int) error {
				if run <= failures {
					return tt.fail()
				}
				return nil
			}
			k := newSink("k")
			r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}}, Sinks: []SinkSpec{memSink("k", k, 10, buffer.DropOldest)}})
			k.waitCount(t, 4)
			if runs := src.runs.Load(); runs != failures+1 {
				t.Fatalf("Run called %d times, want %d", runs, failures+1)
			}
			c := component(t, r.Status(), "source", "s")
			if c.Counters["restarts"] != failures || !strings.Contains(c.LastError, tt.wantErr) || c.State != pipeline.StateRunning {
				t.Fatalf("status %+v, want restarts=%d, running, last error containing %q", c, failures, tt.wantErr)
			}
			if err, _ := r.stop(t); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if got := values(k.received()); !slices.Equal(got, upTo(4)) {
				t.Fatalf("delivered %v, want 1..4", got)
			}
		})
	}
}

// A stuck sink with drop_oldest loses its oldest samples, visibly, while a
// healthy sink fed by the same sources gets everything.
func TestSlowSinkDoesNotStallFast(t *testing.T) {
	const total = 200
	release := make(gate)
	slow, fast := newSink("slow"), newSink("fast")
	slow.write = func(ctx context.Context, call int, _ []model.Sample) error {
		if call == 1 {
			return release.wait(ctx)
		}
		return nil
	}
	slowSpec := memSink("slow", slow, 10, buffer.DropOldest)
	slowSpec.BatchSize = 5
	src := newSource("s", batches("t/x", total, 1)...)
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks:   []SinkSpec{slowSpec, memSink("fast", fast, 1000, buffer.DropOldest)},
	})
	fast.waitCount(t, total)
	<-src.emitted
	if n := slow.count(); n != 0 {
		t.Fatalf("slow sink confirmed %d samples while stuck", n)
	}
	st := r.Status()
	sb := component(t, st, "sink", "slow").Buffer
	if sb.Pushed != total || sb.Acked != 0 || sb.Depth > 10 || sb.Dropped != total-uint64(sb.Depth) {
		t.Fatalf("slow buffer %+v: want pushed=%d, acked=0, depth<=10, dropped=pushed-depth", *sb, total)
	}
	// (Its Acked may trail the last Write by a moment: not checked.)
	if fb := component(t, st, "sink", "fast").Buffer; fb.Dropped != 0 || fb.Pushed != total {
		t.Fatalf("fast buffer %+v: want dropped=0 pushed=%d", *fb, total)
	}
	close(release)
	// Freshest data wins: after the stale in-flight batch, the slow sink
	// gets the last samples, in order.
	slow.waitFor(t, "the newest sample", func() bool {
		got := slow.received()
		return len(got) > 0 && got[len(got)-1].Value.AsInt() == total
	})
	got := slow.received()
	if !strictlyIncreasing(seqs(got)) {
		t.Fatalf("slow sink Seqs %v not increasing", seqs(got))
	}
	tail := values(got[max(0, len(got)-10):])
	if want := upTo(total)[total-10:]; !slices.Equal(tail, want) {
		t.Fatalf("slow sink ends with %v, want %v", tail, want)
	}
}

// Processors run in the configured order on a copy of the batch, may
// filter, and a fully filtered batch stops the chain.
func TestProcessors(t *testing.T) {
	var calls []string
	appendLevel := func(level string) processorFunc {
		return func(b []model.Sample) []model.Sample {
			calls = append(calls, level)
			for i := range b {
				b[i].Path += "/" + level
			}
			return b
		}
	}
	dropMultiplesOf3 := processorFunc(func(b []model.Sample) []model.Sample {
		calls = append(calls, "filter")
		out := b[:0]
		for _, s := range b {
			if s.Value.AsInt()%3 != 0 {
				out = append(out, s)
			}
		}
		return out
	})
	src := newSource("s", samples("t", 1, 5), samples("t", 6, 1), samples("t", 7, 4))
	k := newSink("k")
	r := start(t, Options{
		Sources:    []SourceSpec{{Name: "s", Source: src}},
		Processors: []pipeline.Processor{appendLevel("a"), dropMultiplesOf3, appendLevel("b")},
		Sinks:      []SinkSpec{memSink("k", k, 100, buffer.DropOldest)},
	})
	k.waitCount(t, 7)
	<-src.emitted
	got := k.received()
	if want := []int64{1, 2, 4, 5, 7, 8, 10}; !slices.Equal(values(got), want) {
		t.Fatalf("values %v, want %v", values(got), want)
	}
	for _, s := range got {
		if s.Path != "t/a/b" {
			t.Fatalf("path %q, want t/a/b (processors in order)", s.Path)
		}
		// Seqs are stamped before the chain: a filtered sample leaves a gap.
		if s.Seq != uint64(s.Value.AsInt()) {
			t.Fatalf("value %d has Seq %d", s.Value.AsInt(), s.Seq)
		}
	}
	// The batch of just 6 is filtered whole: "b" does not run for it.
	wantCalls := []string{"a", "filter", "b", "a", "filter", "a", "filter", "b"}
	if !slices.Equal(calls, wantCalls) {
		t.Fatalf("calls %v, want %v", calls, wantCalls)
	}
	if errs := src.errs(); len(errs) > 0 {
		t.Fatalf("Emit errors %v", errs)
	}
	if st := r.Status(); st.Emitted != 10 || st.Filtered != 3 {
		t.Fatalf("emitted=%d filtered=%d, want 10 and 3", st.Emitted, st.Filtered)
	}
}

// A panicking processor fails the Emit, not the process, even when the
// source emits from a goroutine of its own.
func TestProcessorPanic(t *testing.T) {
	bomb := processorFunc(func(b []model.Sample) []model.Sample {
		for _, s := range b {
			if s.Value.AsInt() == 13 {
				panic("processor bug")
			}
		}
		return b
	})
	src := newSource("s", samples("t", 1, 3), samples("t", 13, 1), samples("t", 4, 2))
	src.goroutine = true
	k := newSink("k")
	r := start(t, Options{
		Sources:    []SourceSpec{{Name: "s", Source: src}},
		Processors: []pipeline.Processor{bomb},
		Sinks:      []SinkSpec{memSink("k", k, 100, buffer.DropOldest)},
	})
	k.waitCount(t, 5)
	<-src.emitted
	if got := values(k.received()); !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
		t.Fatalf("values %v, want 1..5", got)
	}
	errs := src.errs()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "processor bug") {
		t.Fatalf("Emit errors %v, want one naming the panic", errs)
	}
	if st := r.Status(); st.Emitted != 5 {
		t.Fatalf("emitted = %d, want 5 (the failed batch was not accepted)", st.Emitted)
	}
}

// processorFunc adapts a function to pipeline.Processor.
type processorFunc func([]model.Sample) []model.Sample

func (f processorFunc) Process(b []model.Sample) []model.Sample { return f(b) }

// BatchSize defaults to 1000 samples per Write.
func TestDefaultBatchSize(t *testing.T) {
	k := newSink("k")
	src := newSource("s", samples("t", 1, 2500))
	start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}}, Sinks: []SinkSpec{memSink("k", k, 5000, buffer.DropOldest)}})
	k.waitCount(t, 2500)
	k.mu.Lock()
	defer k.mu.Unlock()
	var sizes []int
	for _, a := range k.attempts {
		sizes = append(sizes, len(a))
	}
	// One Emit is one Push, atomic for the buffer: the split is exact.
	if !slices.Equal(sizes, []int{1000, 1000, 500}) {
		t.Fatalf("write sizes %v, want [1000 1000 500]", sizes)
	}
}

// Before Run, Status works and shows every component starting.
func TestStatusBeforeRun(t *testing.T) {
	e, err := New(Options{
		Sources: []SourceSpec{{Name: "s", Source: newSource("s")}},
		Sinks:   []SinkSpec{memSink("k", newSink("k"), 10, buffer.DropOldest)},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := e.Status()
	if st.Ready || st.Uptime != 0 || len(st.Components) != 2 {
		t.Fatalf("status %+v before Run", st)
	}
	for _, c := range st.Components {
		if c.State != pipeline.StateStarting {
			t.Fatalf("%s %s state %q before Run, want %q", c.Kind, c.Name, c.State, pipeline.StateStarting)
		}
	}
}

// A processor may also add samples; the filtered counter must not wrap.
func TestProcessorMayAddSamples(t *testing.T) {
	double := processorFunc(func(b []model.Sample) []model.Sample { return append(b, b...) })
	k := newSink("k")
	src := newSource("s", samples("t", 1, 2))
	r := start(t, Options{
		Sources:    []SourceSpec{{Name: "s", Source: src}},
		Processors: []pipeline.Processor{double},
		Sinks:      []SinkSpec{memSink("k", k, 10, buffer.DropOldest)},
	})
	k.waitCount(t, 4)
	if got := values(k.received()); !slices.Equal(got, []int64{1, 2, 1, 2}) {
		t.Fatalf("values %v, want [1 2 1 2]", got)
	}
	if st := r.Status(); st.Emitted != 2 || st.Filtered != 0 {
		t.Fatalf("emitted=%d filtered=%d, want 2 and 0", st.Emitted, st.Filtered)
	}
}

// Emit is the hot path every sample takes: stamp, process, push to every
// sink's buffer. Nothing consumes here, so drop_oldest buffers stay full.
func BenchmarkEmit(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d/sinks=2", size), func(b *testing.B) {
			e, err := New(Options{
				Processors: []pipeline.Processor{processorFunc(func(s []model.Sample) []model.Sample { return s })},
				Sinks: []SinkSpec{
					memSink("a", newSink("a"), 10*size, buffer.DropOldest),
					memSink("b", newSink("b"), 10*size, buffer.DropOldest),
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			batch := samples("t/x", 1, size)
			ctx := context.Background()
			_ = e.Emit(ctx, batch) // size the scratch buffer
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := e.Emit(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/sample")
		})
	}
}
