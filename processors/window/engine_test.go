package window

import (
	"context"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

type nopSink struct{}

func (nopSink) Connect(context.Context) error               { return nil }
func (nopSink) Write(context.Context, []model.Sample) error { return nil }
func (nopSink) Close(context.Context) error                 { return nil }

// TestThroughEngine drives the window with the engine's Tick and a fake
// clock, as in production: aggregates get sequence ids and reach the sink's
// buffer, raw samples do not.
func TestThroughEngine(t *testing.T) {
	w, err := New(Config{Size: time.Minute, Aggregates: []string{"count"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := buffer.NewMemory(100, buffer.DropOldest)
	e, err := engine.New(engine.Options{
		Processors:   []pipeline.Processor{w},
		Sinks:        []engine.SinkSpec{{Name: "k", Sink: nopSink{}, Buffer: buf}},
		TickInterval: -1,
		FirstSeq:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Emit(ctx, []model.Sample{smp("a/x", 1, time.Second), smp("a/x", 2, 2*time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := e.Tick(ctx, t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := buf.Stats().Depth; d != 0 {
		t.Fatalf("%d samples before the window closed", d)
	}
	if err := e.Tick(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	b, err := buf.Next(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Samples) != 1 || b.Samples[0].Path != "a/x/count_1m" || b.Samples[0].Value.AsInt() != 2 || b.Samples[0].Seq != 3 {
		t.Fatalf("got %+v", b.Samples)
	}
}
