package engine

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// seen records the first path of every batch the processor chain ran on
// and signals each one, so a test can tell that processing went on.
type seen struct {
	mu    sync.Mutex
	paths []string
	ch    chan string
}

// next waits for the next processed batch; a chain stalled behind a
// blocked push fails the test instead of hanging it.
func (s *seen) next(t *testing.T) string {
	t.Helper()
	select {
	case p := <-s.ch:
		return p
	case <-time.After(2 * time.Minute):
		t.Fatal("processor chain stalled: no batch processed within 2 min")
		return ""
	}
}

func (s *seen) Process(b []model.Sample) []model.Sample {
	s.mu.Lock()
	s.paths = append(s.paths, b[0].Path)
	s.mu.Unlock()
	s.ch <- b[0].Path
	return b
}

// newBlockingEngine is an engine whose one sink buffer holds 4 samples
// with policy block and is never drained (the engine is not started), and
// whose processor reports every batch it sees.
func newBlockingEngine(t *testing.T) (*Engine, *seen, buffer.Buffer) {
	t.Helper()
	rec := &seen{ch: make(chan string, 16)}
	buf := buffer.NewMemory(4, buffer.Block)
	e, err := New(Options{
		Processors:   []pipeline.Processor{rec},
		Sinks:        []SinkSpec{{Name: "k", Sink: newSink("k"), Buffer: buf}},
		TickInterval: -1,
		FirstSeq:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, rec, buf
}

// With policy block and a full buffer, the Emit feeding it waits, but the
// processors (rules) keep running for every other Emit, and the buffer
// still receives samples in sequence order.
func TestBlockedPushDoesNotStallProcessors(t *testing.T) {
	e, rec, buf := newBlockingEngine(t)
	ctx := context.Background()
	emit := func(ctx context.Context, path string, n int) <-chan error {
		done := make(chan error, 1)
		go func() { done <- e.Emit(ctx, samples(path, 1, n)) }()
		return done
	}

	aDone := emit(ctx, "a", 6) // 4 fit, then it blocks
	if p := rec.next(t); p != "a" {
		t.Fatalf("processed %q first, want a", p)
	}
	bDone := emit(ctx, "b", 1)
	if p := rec.next(t); p != "b" {
		t.Fatalf("processed %q, want b while a's push is blocked", p)
	}
	dDone := emit(ctx, "d", 1)
	if p := rec.next(t); p != "d" {
		t.Fatalf("processed %q, want d", p)
	}
	select {
	case err := <-aDone:
		t.Fatalf("a returned (%v) while the buffer is full", err)
	case err := <-bDone:
		t.Fatalf("b returned (%v) before a's push", err)
	default:
	}

	var got []model.Sample
	for len(got) < 8 { // a×6, b, d
		b, err := buf.Next(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Samples...)
		if err := buf.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	for name, ch := range map[string]<-chan error{"a": aDone, "b": bDone, "d": dDone} {
		if err := <-ch; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var paths []string
	for i, s := range got {
		paths = append(paths, s.Path)
		if i > 0 && s.Seq <= got[i-1].Seq {
			t.Fatalf("seq %d after %d: buffer not in sequence order", s.Seq, got[i-1].Seq)
		}
	}
	if want := []string{"a", "a", "a", "a", "a", "a", "b", "d"}; !slices.Equal(paths, want) {
		t.Fatalf("buffer got %v, want %v", paths, want)
	}
}

// Many concurrent sources: every sample reaches the buffer once, in
// sequence order, whatever the interleaving.
func TestConcurrentEmitKeepsSequenceOrder(t *testing.T) {
	buf := buffer.NewMemory(1<<20, buffer.Block)
	e, err := New(Options{
		Sinks:        []SinkSpec{{Name: "k", Sink: newSink("k"), Buffer: buf}},
		TickInterval: -1,
		FirstSeq:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	const sources, batches, size = 8, 200, 5
	var wg sync.WaitGroup
	for s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				if err := e.Emit(context.Background(), samples("s", s*batches*size+i*size, size)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b, err := buf.Next(context.Background(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Samples) != sources*batches*size {
		t.Fatalf("%d samples, want %d", len(b.Samples), sources*batches*size)
	}
	for i, s := range b.Samples {
		if s.Seq != uint64(i+1) {
			t.Fatalf("sample %d has seq %d: pushes out of order", i, s.Seq)
		}
	}
}

// A batch whose context ends while it waits for its turn (shutdown: every
// source is cancelled at once) is still pushed in its turn when there is
// room: it went through the processors, so dropping it would lose it
// without a count.
func TestQueuedEmitSurvivesCancellation(t *testing.T) {
	e, rec, buf := newBlockingEngine(t)
	aDone := make(chan error, 1)
	go func() { aDone <- e.Emit(context.Background(), samples("a", 1, 6)) }() // 4 fit, then it waits
	rec.next(t)
	bctx, cancel := context.WithCancel(context.Background())
	bDone := make(chan error, 1)
	go func() { bDone <- e.Emit(bctx, samples("b", 1, 1)) }()
	rec.next(t)
	cancel()

	var got []string
	for len(got) < 7 {
		b, err := buf.Next(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range b.Samples {
			got = append(got, s.Path)
		}
		if err := buf.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-aDone; err != nil {
		t.Fatalf("a: %v", err)
	}
	if err := <-bDone; err != nil {
		t.Fatalf("b: %v (pushed in its turn despite the cancelled context)", err)
	}
	if want := []string{"a", "a", "a", "a", "a", "a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("buffer got %v, want %v", got, want)
	}
}
