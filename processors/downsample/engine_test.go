package downsample

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

// TestThroughEngine drives both modes inside the engine with its Tick and
// a fake clock, as in production: what reaches the sink's buffer is one
// sample per tag and interval, numbered in increasing order per tag, with
// the samples' own timestamps.
func TestThroughEngine(t *testing.T) {
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	smp := func(v int64, d time.Duration) model.Sample {
		return model.Sample{Path: "a/x", Value: model.Int(v), SourceTime: at(d), EdgeTime: at(d)}
	}
	type emit struct {
		tick    time.Duration // Tick at t0+tick when samples is nil
		samples []model.Sample
	}
	tests := []struct {
		mode  string
		steps []emit
		want  []int64 // values in the buffer, in order
	}{
		{ModeFirst, []emit{
			{samples: []model.Sample{smp(1, 0), smp(2, time.Second)}},
			{samples: []model.Sample{smp(3, 9*time.Second), smp(4, 10*time.Second)}},
			{tick: 30 * time.Second},
		}, []int64{1, 4}},
		{ModeLast, []emit{
			{samples: []model.Sample{smp(1, 0), smp(2, time.Second)}},
			{tick: 9 * time.Second},
			{samples: []model.Sample{smp(3, 12*time.Second)}},
			{tick: 20 * time.Second},
			{samples: []model.Sample{smp(4, 21*time.Second), smp(5, 22*time.Second)}},
			{tick: 30 * time.Second},
		}, []int64{2, 3, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			p, err := New(Config{Interval: 10 * time.Second, Mode: tt.mode}, nil)
			if err != nil {
				t.Fatal(err)
			}
			buf := buffer.NewMemory(100, buffer.DropOldest)
			e, err := engine.New(engine.Options{
				Processors:   []pipeline.Processor{p},
				Sinks:        []engine.SinkSpec{{Name: "k", Sink: nopSink{}, Buffer: buf}},
				TickInterval: -1,
				FirstSeq:     1,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			sent := map[int64]int64{}
			for _, st := range tt.steps {
				if st.samples == nil {
					if err := e.Tick(ctx, t0.Add(st.tick)); err != nil {
						t.Fatal(err)
					}
					continue
				}
				for _, s := range st.samples {
					sent[s.Value.AsInt()] = s.SourceTime
				}
				if err := e.Emit(ctx, st.samples); err != nil {
					t.Fatal(err)
				}
			}
			if d := buf.Stats().Depth; d != len(tt.want) {
				t.Fatalf("buffer holds %d samples, want %d", d, len(tt.want))
			}
			b, err := buf.Next(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			var last uint64
			for i, s := range b.Samples {
				if s.Value.AsInt() != tt.want[i] || s.SourceTime != sent[tt.want[i]] {
					t.Fatalf("sample %d: %+v, want value %d with its own timestamp", i, s, tt.want[i])
				}
				if s.Seq <= last {
					t.Fatalf("sample %d: seq %d after %d: want increasing", i, s.Seq, last)
				}
				last = s.Seq
			}
		})
	}
}
