package engine

import (
	"context"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// windowCount is a time-driven processor: it swallows its input and, on
// each flush, emits how many samples it saw since the last one.
type windowCount struct{ n int64 }

func (w *windowCount) Process(b []model.Sample) []model.Sample { w.n += int64(len(b)); return b[:0] }

func (w *windowCount) Flush(now time.Time, out []model.Sample) []model.Sample {
	if w.n == 0 {
		return out
	}
	out = append(out, model.Sample{Path: "agg/count", Value: model.Int(w.n), SourceTime: now.UnixNano(), EdgeTime: now.UnixNano()})
	w.n = 0
	return out
}

// doubler runs after the window: flushed samples go through the rest of
// the chain.
type doubler struct{}

func (doubler) Process(b []model.Sample) []model.Sample {
	for i := range b {
		b[i].Value = model.Int(b[i].Value.AsInt() * 2)
	}
	return b
}

func TestTickFlushesThroughTheRestOfTheChain(t *testing.T) {
	sink := newSink("k")
	buf := buffer.NewMemory(100, buffer.DropOldest)
	e, err := New(Options{
		Processors:   []pipeline.Processor{&windowCount{}, doubler{}},
		Sinks:        []SinkSpec{{Name: "k", Sink: sink, Buffer: buf}},
		TickInterval: -1, // the test owns the clock
		FirstSeq:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Emit(ctx, samples("a/b", 1, 7)); err != nil {
		t.Fatal(err)
	}
	if got := buf.Stats().Depth; got != 0 {
		t.Fatalf("the window let %d samples through before its flush", got)
	}
	clock := time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC)
	if err := e.Tick(ctx, clock); err != nil {
		t.Fatal(err)
	}
	if err := e.Tick(ctx, clock.Add(time.Second)); err != nil { // empty window: nothing
		t.Fatal(err)
	}
	b, err := buf.Next(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Samples) != 1 || b.Samples[0].Value.AsInt() != 14 || b.Samples[0].SourceTime != clock.UnixNano() {
		t.Fatalf("flushed %+v, want one sample of 7×2 at the tick's time", b.Samples)
	}
	if b.Samples[0].Seq != 8 {
		t.Fatalf("flushed sample has seq %d, want 8 (after the 7 emitted)", b.Samples[0].Seq)
	}
}

// adder appends a derived sample, as a derive processor does.
type adder struct{}

func (adder) Process(b []model.Sample) []model.Sample {
	return append(b, model.Sample{Path: "derived/x", Value: model.Int(1)})
}

func TestDerivedSamplesGetSequenceIDs(t *testing.T) {
	buf := buffer.NewMemory(100, buffer.DropOldest)
	e, err := New(Options{
		Processors: []pipeline.Processor{adder{}},
		Sinks:      []SinkSpec{{Name: "k", Sink: newSink("k"), Buffer: buf}},
		FirstSeq:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Emit(context.Background(), samples("a/b", 1, 2)); err != nil {
		t.Fatal(err)
	}
	b, err := buf.Next(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(b.Samples); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("seqs %v, want [1 2 3]", got)
	}
}
