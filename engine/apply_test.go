package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// hangBound bounds every wait in these tests: a hang fails, it never
// passes by timing out.
const hangBound = 2 * time.Minute

// eventually polls cond until it holds or hangBound passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling, not synchronisation
	}
}

func waitDone(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hangBound):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// loopSource emits one sample at a time with increasing values until ctx
// ends (or max samples), recording the values whose Emit was accepted.
type loopSource struct {
	path string
	max  int

	mu       sync.Mutex
	accepted []int64
	runs     atomic.Int32
	stopped  chan struct{}
}

func newLoopSource(path string) *loopSource {
	return &loopSource{path: path, max: 20000, stopped: make(chan struct{})}
}

func (s *loopSource) Run(ctx context.Context, out pipeline.Emitter) error {
	s.runs.Add(1)
	defer close(s.stopped)
	for v := 1; v <= s.max && ctx.Err() == nil; v++ {
		if out.Emit(ctx, samples(s.path, v, 1)) == nil {
			s.mu.Lock()
			s.accepted = append(s.accepted, int64(v))
			s.mu.Unlock()
		}
	}
	<-ctx.Done()
	return nil
}

func (s *loopSource) acceptedValues() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// valuesOf returns the values a sink received for path.
func valuesOf(got []model.Sample, path string) []int64 {
	var out []int64
	for _, s := range got {
		if s.Path == path {
			out = append(out, s.Value.AsInt())
		}
	}
	return out
}

func hasAll(got, want []int64) error {
	have := map[int64]bool{}
	for _, v := range got {
		have[v] = true
	}
	for _, v := range want {
		if !have[v] {
			return fmt.Errorf("accepted value %d never reached the sink (%d accepted, %d received)", v, len(want), len(got))
		}
	}
	return nil
}

// Unchanged components are not restarted or reconnected; an added source
// feeds the sinks already there, an added sink gets samples from the cut
// on, and the shutdown drains and stops what Apply added.
func TestApplyAddsWithoutTouchingTheRest(t *testing.T) {
	srcA := newSource("a", samples("a", 1, 3))
	sinkX := newSink("x")
	r := start(t, Options{Sources: []SourceSpec{{Name: "a", Source: srcA}},
		Sinks: []SinkSpec{memSink("x", sinkX, 100, buffer.Block)}})
	sinkX.waitCount(t, 3)

	srcB := newSource("b", samples("b", 1, 5))
	sinkY := newSink("y")
	err := r.Apply(context.Background(), Change{
		AddSources: []SourceSpec{{Name: "b", Source: srcB}},
		AddSinks:   []SinkSpec{memSink("y", sinkY, 100, buffer.Block)},
	})
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	sinkX.waitCount(t, 8)
	sinkY.waitCount(t, 5)
	if got := valuesOf(sinkY.received(), "b"); !slices.Equal(got, upTo(5)) {
		t.Errorf("added sink got %v from the added source, want 1..5", got)
	}
	if c, _, _ := sinkX.calls(); c != 1 {
		t.Errorf("unchanged sink connected %d times, want 1", c)
	}
	if n := srcA.runs.Load(); n != 1 {
		t.Errorf("unchanged source ran %d times, want 1", n)
	}
	st := r.Status()
	for _, kn := range [][2]string{{"source", "a"}, {"source", "b"}, {"sink", "x"}, {"sink", "y"}} {
		component(t, st, kn[0], kn[1])
	}
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	waitDone(t, "added source to stop", srcB.stopped)
	if _, _, closes := sinkY.calls(); closes != 1 {
		t.Errorf("added sink closed %d times at shutdown, want 1", closes)
	}
}

// A removed sink stops alone and its durable buffer keeps what it held on
// disk; the other sink goes on.
func TestApplyRemovedSinkKeepsDurableBuffer(t *testing.T) {
	dir := t.TempDir()
	buf, err := durable.Open(durable.Config{Dir: dir, MaxBytes: 64 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	down := newSink("down")
	down.write = func(ctx context.Context, _ int, _ []model.Sample) error {
		<-ctx.Done() // never delivers: everything stays buffered
		return ctx.Err()
	}
	up := newSink("up")
	src := newSource("s", samples("s", 1, 10))
	r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks: []SinkSpec{{Name: "down", Sink: down, Buffer: buf}, memSink("up", up, 100, buffer.Block)}})
	up.waitCount(t, 10)
	waitDone(t, "source to emit", src.emitted)

	if err := r.Apply(context.Background(), Change{RemoveSinks: []string{"down"}}); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if _, _, closes := down.calls(); closes != 1 {
		t.Errorf("removed sink closed %d times, want 1", closes)
	}
	for _, c := range r.Status().Components {
		if c.Name == "down" {
			t.Errorf("removed sink still in status: %+v", c)
		}
	}
	// Released: the store opens again, with every sample.
	again, err := durable.Open(durable.Config{Dir: dir, MaxBytes: 64 << 20}, nil)
	if err != nil {
		t.Fatalf("reopen removed sink's buffer: %v", err)
	}
	defer again.Release()
	defer again.Close()
	if d := again.Stats().Depth; d != 10 {
		t.Errorf("removed sink's buffer holds %d samples on disk, want 10", d)
	}
	if c, _, _ := up.calls(); c != 1 {
		t.Errorf("other sink connected %d times, want 1", c)
	}
}

// Replacing a source while it emits loses no sample that Emit accepted,
// and the old source has stopped when Apply returns.
func TestApplyReplaceSourceWhileEmitting(t *testing.T) {
	old := newLoopSource("old")
	sink := newSink("k")
	r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: old}},
		Sinks: []SinkSpec{memSink("k", sink, 64, buffer.Block)}})
	eventually(t, "old source to emit", func() bool { return len(old.acceptedValues()) >= 100 })

	repl := newLoopSource("new")
	err := r.Apply(context.Background(), Change{RemoveSources: []string{"s"}, AddSources: []SourceSpec{{Name: "s", Source: repl}}})
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	select {
	case <-old.stopped:
	default:
		t.Fatal("Apply returned before the removed source stopped")
	}
	eventually(t, "new source to emit", func() bool { return len(repl.acceptedValues()) >= 100 })
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	got := sink.received()
	for _, s := range []*loopSource{old, repl} {
		if err := hasAll(valuesOf(got, s.path), s.acceptedValues()); err != nil {
			t.Errorf("source %s: %v", s.path, err)
		}
	}
	if !strictlyIncreasing(seqs(got)) {
		t.Error("sequence ids not increasing across the replace")
	}
}

// closingProc tags samples and counts Close calls.
type closingProc struct {
	tag    string
	closed atomic.Int32
}

func (p *closingProc) Process(b []model.Sample) []model.Sample {
	for i := range b {
		b[i].Path = p.tag + "/" + b[i].Path
	}
	return b
}

func (p *closingProc) Close() error { p.closed.Add(1); return nil }

// Processors are replaced between two batches while samples flow: every
// sample went through exactly one chain, the old one before the cut and
// the new one after; a replaced processor is closed, a kept one is not.
func TestApplyReplaceProcessorsMidStream(t *testing.T) {
	src := newLoopSource("v")
	sink := newSink("k")
	kept := &closingProc{tag: "kept"}
	a := &closingProc{tag: "A"}
	r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}},
		Processors: []pipeline.Processor{kept, a}, ProcessorNames: []string{"kept", "a"},
		Sinks: []SinkSpec{memSink("k", sink, 64, buffer.Block)}})
	eventually(t, "samples through the old chain", func() bool { return sink.count() >= 100 })

	b := &closingProc{tag: "B"}
	err := r.Apply(context.Background(), Change{ReplaceProcessors: true,
		Processors: []pipeline.Processor{kept, b}, ProcessorNames: []string{"kept", "b"}})
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	n := sink.count()
	sink.waitCount(t, n+100)
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if a.closed.Load() != 1 || b.closed.Load() != 0 || kept.closed.Load() != 0 {
		t.Errorf("closed: replaced %d (want 1), new %d, kept %d (want 0)", a.closed.Load(), b.closed.Load(), kept.closed.Load())
	}
	sawB := false
	for _, s := range sink.received() {
		switch s.Path {
		case "A/kept/v":
			if sawB {
				t.Fatalf("sample %d through the old chain after the new one", s.Seq)
			}
		case "B/kept/v":
			sawB = true
		default:
			t.Fatalf("sample %d path %q: not through exactly one chain", s.Seq, s.Path)
		}
	}
	if !sawB {
		t.Error("no sample through the new chain")
	}
	if err := hasAll(valuesOf(stripPrefix(sink.received()), "v"), src.acceptedValues()); err != nil {
		t.Error(err)
	}
}

func stripPrefix(got []model.Sample) []model.Sample {
	for i := range got {
		got[i].Path = got[i].Path[strings.LastIndex(got[i].Path, "/")+1:]
	}
	return got
}

// A changed sink whose buffer settings are unchanged takes over its
// predecessor's buffer, memory included: what the old sink could not
// deliver, the new one does.
func TestApplyKeepBuffer(t *testing.T) {
	old := newSink("k")
	old.write = func(ctx context.Context, _ int, _ []model.Sample) error { <-ctx.Done(); return ctx.Err() }
	src := newSource("s", samples("s", 1, 20))
	r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks: []SinkSpec{memSink("k", old, 100, buffer.Block)}})
	waitDone(t, "source to emit", src.emitted)

	repl := newSink("k")
	err := r.Apply(context.Background(), Change{RemoveSinks: []string{"k"}, KeepBuffers: []string{"k"},
		AddSinks: []SinkSpec{{Name: "k", Sink: repl}}})
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	repl.waitCount(t, 20)
	if got := values(repl.received()); !slices.Equal(got, upTo(20)) {
		t.Errorf("new sink got %v, want 1..20 from the kept buffer", got)
	}
}

// A changed sink reopens the durable buffer its predecessor held
// (OpenBuffer runs after the release) and delivers what it kept.
func TestApplyReopenDurableBuffer(t *testing.T) {
	dir := t.TempDir()
	open := func() (buffer.Buffer, DeadLetters, error) {
		b, err := durable.Open(durable.Config{Dir: dir, MaxBytes: 64 << 20}, nil)
		return b, nil, err
	}
	buf, _, err := open()
	if err != nil {
		t.Fatal(err)
	}
	old := newSink("k")
	old.write = func(ctx context.Context, _ int, _ []model.Sample) error { <-ctx.Done(); return ctx.Err() }
	src := newSource("s", samples("s", 1, 20))
	r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks: []SinkSpec{{Name: "k", Sink: old, Buffer: buf}}})
	waitDone(t, "source to emit", src.emitted)

	// Opening the held store fails: that is why OpenBuffer waits.
	if b, _, err := open(); err == nil {
		b.(pipeline.Releaser).Release()
		t.Fatal("a held durable buffer opened twice")
	}
	repl := newSink("k")
	err = r.Apply(context.Background(), Change{RemoveSinks: []string{"k"},
		AddSinks: []SinkSpec{{Name: "k", Sink: repl, OpenBuffer: open}}})
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	repl.waitCount(t, 20)
	if got := values(repl.received()); !slices.Equal(got, upTo(20)) {
		t.Errorf("new sink got %v, want 1..20 from the reopened buffer", got)
	}
}

// An invalid change is refused as a whole: nothing stops, nothing starts,
// no buffer is opened.
func TestApplyInvalidChangeLeavesGraph(t *testing.T) {
	src := newSource("a", samples("a", 1, 3))
	sink := newSink("x")
	r := start(t, Options{Sources: []SourceSpec{{Name: "a", Source: src}},
		Sinks: []SinkSpec{memSink("x", sink, 100, buffer.Block)}})
	sink.waitCount(t, 3)
	before := r.Status()

	var opened atomic.Int32
	open := func() (buffer.Buffer, DeadLetters, error) {
		opened.Add(1)
		return buffer.NewMemory(10, buffer.Block), nil, nil
	}
	newS := func() SourceSpec { return SourceSpec{Name: "b", Source: newSource("b")} }
	tests := []struct {
		name   string
		change Change
		want   string
	}{
		{"unknown source", Change{RemoveSources: []string{"nope"}, AddSources: []SourceSpec{newS()}}, `remove source "nope": no such source`},
		{"unknown sink", Change{RemoveSinks: []string{"nope"}}, `remove sink "nope": no such sink`},
		{"removed twice", Change{RemoveSources: []string{"a", "a"}}, "named twice"},
		{"duplicate source", Change{AddSources: []SourceSpec{{Name: "a", Source: newSource("a")}}}, `add source "a": duplicate source name`},
		{"duplicate sink", Change{AddSinks: []SinkSpec{{Name: "x", Sink: newSink("x"), OpenBuffer: open}}}, `add sink "x": duplicate sink name`},
		{"added twice", Change{AddSources: []SourceSpec{newS(), newS()}}, `add source "b": duplicate`},
		{"no buffer", Change{AddSinks: []SinkSpec{{Name: "y", Sink: newSink("y")}}}, "needs a buffer"},
		{"no sink", Change{AddSinks: []SinkSpec{{Name: "y", OpenBuffer: open}}}, "needs a name and an implementation"},
		{"keep without replace", Change{KeepBuffers: []string{"x"}}, "removed and added in the same change"},
		{"keep with buffer", Change{RemoveSinks: []string{"x"}, KeepBuffers: []string{"x"},
			AddSinks: []SinkSpec{{Name: "x", Sink: newSink("x"), OpenBuffer: open}}}, "brings none"},
		{"nil processor", Change{RemoveSources: []string{"a"}, ReplaceProcessors: true, Processors: []pipeline.Processor{nil}}, "processor is nil"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Apply(context.Background(), tc.change)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %v, want an error with %q", err, tc.want)
			}
		})
	}
	// A failing OpenBuffer of a new sink also changes nothing.
	err := r.Apply(context.Background(), Change{RemoveSources: []string{"a"},
		AddSinks: []SinkSpec{{Name: "y", Sink: newSink("y"), OpenBuffer: func() (buffer.Buffer, DeadLetters, error) {
			return nil, nil, errors.New("disk on fire")
		}}}})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Apply with a failing buffer = %v", err)
	}
	if opened.Load() != 0 {
		t.Errorf("a refused change opened %d buffers", opened.Load())
	}
	after := r.Status()
	if len(after.Components) != len(before.Components) {
		t.Fatalf("components changed: %+v → %+v", before.Components, after.Components)
	}
	if st := component(t, after, "source", "a").State; st != pipeline.StateRunning {
		t.Errorf("source a is %s after refused changes, want running", st)
	}
	if c, _, _ := sink.calls(); c != 1 || src.runs.Load() != 1 {
		t.Errorf("refused changes restarted something: %d connects, %d runs", c, src.runs.Load())
	}
}

// Apply outside Run is refused.
func TestApplyNotRunning(t *testing.T) {
	e, err := New(Options{Sinks: []SinkSpec{memSink("x", newSink("x"), 10, buffer.Block)}, Backoff: tinyBackoff})
	if err != nil {
		t.Fatal(err)
	}
	add := Change{AddSources: []SourceSpec{{Name: "b", Source: newSource("b")}}}
	if err := e.Apply(context.Background(), add); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Apply before Run = %v, want ErrNotRunning", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	eventually(t, "Run to start", e.Running)
	cancel()
	select {
	case <-done:
	case <-time.After(hangBound):
		t.Fatal("Run did not return")
	}
	if err := e.Apply(context.Background(), add); !errors.Is(err, ErrNotRunning) || e.Running() {
		t.Errorf("Apply after Run = %v (running %v), want ErrNotRunning", err, e.Running())
	}
}

// Concurrent Apply calls are serialised; each sees the graph the other
// left.
func TestApplyConcurrent(t *testing.T) {
	src := newLoopSource("v")
	sink := newSink("x")
	r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks: []SinkSpec{memSink("x", sink, 64, buffer.Block)}})
	eventually(t, "Run to start", r.Running)
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("y%d", i)
			errs <- r.Apply(context.Background(), Change{AddSinks: []SinkSpec{memSink(name, newSink(name), 64, buffer.DropOldest)},
				ReplaceProcessors: true, Processors: []pipeline.Processor{&closingProc{tag: name}}})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Apply = %v", err)
		}
	}
	if got := len(r.Status().Components); got != 2+n {
		t.Errorf("%d components after %d concurrent adds, want %d", got, n, 2+n)
	}
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// A sink that is down with a full buffer (policy block) holds its sources
// back; removing it, or replacing it while keeping its buffer, must not
// wait for room that never comes, and frees the sources.
func TestApplyUnblocksFullBuffer(t *testing.T) {
	for _, keepBuffer := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keepBuffer), func(t *testing.T) {
			down := newSink("down")
			down.connect = func(context.Context, int) error { return errors.New("unreachable") }
			up := newSink("up")
			src := newSource("s", batches("s", 20, 1)...)
			downBuf := buffer.NewMemory(5, buffer.Block)
			r := start(t, Options{Sources: []SourceSpec{{Name: "s", Source: src}},
				Sinks: []SinkSpec{{Name: "down", Sink: down, Buffer: downBuf}, memSink("up", up, 100, buffer.Block)}})
			up.waitCount(t, 5)
			eventually(t, "the full buffer to hold the source back", func() bool { return downBuf.Stats().Depth == 5 })

			change := Change{RemoveSinks: []string{"down"}}
			repl := newSink("down")
			if keepBuffer {
				change.KeepBuffers = []string{"down"}
				change.AddSinks = []SinkSpec{{Name: "down", Sink: repl}}
			}
			if err := r.Apply(context.Background(), change); err != nil {
				t.Fatalf("Apply = %v", err)
			}
			waitDone(t, "the source to emit everything", src.emitted)
			up.waitCount(t, 20)
			if keepBuffer {
				repl.waitCount(t, 20)
				if got := values(repl.received()); !slices.Equal(got, upTo(20)) {
					t.Errorf("new sink got %v, want 1..20", got)
				}
			}
			if errs := src.errs(); len(errs) > 0 {
				t.Errorf("Emit failed: %v", errs)
			}
		})
	}
}

// A time-driven processor added by Apply is flushed like one configured
// at the start, through the rest of the new chain.
func TestApplyAddsFlusher(t *testing.T) {
	sink := newSink("k")
	r := start(t, Options{Sinks: []SinkSpec{memSink("k", sink, 100, buffer.Block)}, TickInterval: -1})
	eventually(t, "Run to start", r.Running)
	err := r.Apply(context.Background(), Change{ReplaceProcessors: true,
		Processors: []pipeline.Processor{&windowCount{}, doubler{}}, ProcessorNames: []string{"w", "d"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Emit(ctx, samples("a/b", 1, 7)); err != nil {
		t.Fatal(err)
	}
	if err := r.Tick(ctx, time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	sink.waitCount(t, 1)
	if got := sink.received(); got[0].Path != "agg/count" || got[0].Value.AsInt() != 14 {
		t.Errorf("flushed %+v, want agg/count = 14 (7 doubled)", got[0])
	}
}
