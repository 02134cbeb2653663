package rename

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

// TestThroughEngine runs the processor inside the engine, as in
// production: renamed samples reach the sink's buffer with their sequence
// ids in order, the others unchanged.
func TestThroughEngine(t *testing.T) {
	p, err := New(Config{From: "plant/", To: "acme/site1/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := buffer.NewMemory(100, buffer.DropOldest)
	e, err := engine.New(engine.Options{
		Processors: []pipeline.Processor{p},
		Sinks:      []engine.SinkSpec{{Name: "k", Sink: nopSink{}, Buffer: buf}},
		FirstSeq:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := []model.Sample{
		{Path: "plant/l1/a", Value: model.Int(1)},
		{Path: "plantX/l1/a", Value: model.Int(2)},
		{Path: "plant/l1/a", Value: model.Int(3)},
	}
	if err := e.Emit(ctx, in); err != nil {
		t.Fatal(err)
	}
	b, err := buf.Next(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"acme/site1/l1/a", "plantX/l1/a", "acme/site1/l1/a"}
	if len(b.Samples) != len(want) {
		t.Fatalf("got %+v", b.Samples)
	}
	for i, s := range b.Samples {
		if s.Path != want[i] || s.Value.AsInt() != int64(i+1) || s.Seq != uint64(i+1) {
			t.Fatalf("sample %d: %+v, want path %s, value %d, seq %d", i, s, want[i], i+1, i+1)
		}
	}
}
