package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/deadband"
	"github.com/weir-edge/weir/processors/window"
	"github.com/weir-edge/weir/route"
)

// The case with the real processors: a deadband on one sink, a
// one-minute window on another, nothing on the third; the rules (a stage
// of the shared chain) see every sample, the third sink too.
func TestRouteRealProcessors(t *testing.T) {
	db, err := deadband.New(deadband.Config{Rules: []deadband.Rule{{Match: []string{"#"}, Absolute: 5}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	win, err := window.New(window.Config{Match: []string{"#"}, Size: time.Minute, Aggregates: []string{"mean", "count"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rules := &chainSeen{}
	bufs := map[string]buffer.Buffer{}
	var sinks []SinkSpec
	for _, x := range []struct {
		name string
		p    pipeline.Processor
	}{{"db", db}, {"win", win}, {"raw", nil}} {
		o := route.Options{Sink: x.name}
		if x.p != nil {
			o.Processors = []pipeline.Processor{x.p}
		}
		bufs[x.name] = buffer.NewMemory(1000, buffer.DropOldest)
		sinks = append(sinks, SinkSpec{Name: x.name, Sink: newSink(x.name), Buffer: bufs[x.name], Route: newRoute(t, o)})
	}
	e, err := New(Options{Processors: []pipeline.Processor{rules}, Sinks: sinks, TickInterval: -1, FirstSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// 60 samples, one a second, values 0..59: the deadband passes a
	// change of more than 5, so every sixth.
	for i := range 60 {
		ts := start.Add(time.Duration(i) * time.Second).UnixNano()
		s := model.Sample{Path: "p/t", Value: model.Float(float64(i)), SourceTime: ts, EdgeTime: ts}
		if err := e.Emit(ctx, []model.Sample{s}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Tick(ctx, start.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if rules.n != 60 {
		t.Errorf("the shared chain saw %d samples, want 60", rules.n)
	}
	if got := len(drainMem(t, bufs["raw"])); got != 60 {
		t.Errorf("raw sink got %d samples, want 60", got)
	}
	var v []float64
	for _, s := range drainMem(t, bufs["db"]) {
		v = append(v, s.Value.AsFloat())
	}
	if len(v) != 10 || v[0] != 0 || v[1] != 6 {
		t.Errorf("deadband sink got values %v, want every sixth", v)
	}
	agg := drainMem(t, bufs["win"])
	byAgg := map[string]float64{}
	for _, s := range agg {
		name := s.Path[strings.LastIndexByte(s.Path, '/')+1:]
		name, _, _ = strings.Cut(name, "_")
		byAgg[name], _ = s.Value.Float64()
		if s.Seq == 0 {
			t.Errorf("aggregate %s has no sequence id", s.Path)
		}
	}
	if len(agg) != 2 || byAgg["mean"] != 29.5 || byAgg["count"] != 60 {
		t.Errorf("window sink got %v (%d samples), want one mean (29.5) and one count (60)", byAgg, len(agg))
	}
}

// Under Run, per sink: in = filtered + denied + chain_in, and chain_out =
// written + dropped + depth once the sink has drained.
func TestRouteMetricsAddUp(t *testing.T) {
	cl, err := route.NewClassifier(route.ClassificationConfig{Rules: []route.ClassRule{{Match: []string{"s/secret"}, Class: "restricted"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRoute(t, route.Options{Sink: "k", Classifier: cl, Selection: route.Selection{Exclude: []string{"s/skip"}},
		Processors: []pipeline.Processor{evenOnly{}}})
	sink := newSink("k")
	buf := buffer.NewMemory(4, buffer.DropOldest) // small: some samples are dropped while the sink is held
	hold := make(gate)
	sink.write = func(ctx context.Context, call int, _ []model.Sample) error {
		if call == 1 {
			return hold.wait(ctx)
		}
		return nil
	}
	eng := start(t, Options{Sinks: []SinkSpec{{Name: "k", Sink: sink, Buffer: buf, Route: r, BatchSize: 2}}})
	ctx := context.Background()
	for i := range 20 {
		b := samples("s/a", 2*i, 2) // one even, one odd
		b = append(b, model.Sample{Path: "s/secret", Value: model.Int(2)}, model.Sample{Path: "s/skip", Value: model.Int(2)})
		if err := eng.Emit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	close(hold)
	// The last Ack follows the sink's last call, which is all waitFor
	// re-checks on: poll the buffer itself (bounded) instead.
	pollUntil(t, "the buffer to drain", func() bool { return buf.Stats().Depth == 0 })
	c := component(t, eng.Status(), "sink", "k")
	n := c.Counters
	if n["route_in_samples"] != 80 || n["route_in_samples"] != n["route_filtered_samples"]+n["route_denied_samples"]+n["route_chain_in_samples"] {
		t.Errorf("in does not add up: %v", n)
	}
	if n["route_denied_samples"] != 20 || n["route_filtered_samples"] != 20 || n["route_chain_out_samples"] != 20 {
		t.Errorf("counters %v, want 20 denied, 20 filtered, 20 out of the chain", n)
	}
	// The buffer's own account: a sample dropped from a full memory
	// buffer while its batch was in flight counts as dropped, and its
	// copy the sink still delivered is not acked again (so written may
	// exceed acked by those).
	if got := c.Buffer.Acked + c.Buffer.Dropped + uint64(c.Buffer.Depth); n["route_chain_out_samples"] != got {
		t.Errorf("chain_out %d != acked %d + dropped %d + depth %d", n["route_chain_out_samples"], c.Buffer.Acked, c.Buffer.Dropped, c.Buffer.Depth)
	}
	if n["samples_written"] < c.Buffer.Acked {
		t.Errorf("written %d < acked %d", n["samples_written"], c.Buffer.Acked)
	}
	if c.Buffer.Dropped == 0 {
		t.Log("no sample was dropped; the identity held without drops")
	}
}

// BenchmarkEmitRouted is BenchmarkEmit with three sinks on different
// routes (everything; a pattern selection; a pattern selection under a
// classification), against three sinks without routes: what routing adds
// to the hot path.
func BenchmarkEmitRouted(b *testing.B) {
	cl, err := route.NewClassifier(route.ClassificationConfig{Rules: []route.ClassRule{{Match: []string{"p/recipes/#"}, Class: "confidential"}}})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]model.Sample, 100)
	for i := range batch {
		area := []string{"line1", "line2", "recipes", "quality"}[i%4]
		batch[i] = model.Sample{Path: fmt.Sprintf("p/%s/t%02d", area, i), Value: model.Float(float64(i))}
	}
	for _, routed := range []bool{false, true} {
		b.Run(fmt.Sprintf("routed=%v/sinks=3", routed), func(b *testing.B) {
			var sinks []SinkSpec
			for i, sel := range []route.Selection{{}, {Include: []string{"p/line1/#", "p/line2/#"}}, {Exclude: []string{"p/quality/#"}}} {
				s := memSink(fmt.Sprint(i), newSink(fmt.Sprint(i)), 1000, buffer.DropOldest)
				if routed {
					s.Route = newRoute(b, route.Options{Sink: s.Name, Selection: sel, Classifier: cl})
				}
				sinks = append(sinks, s)
			}
			e, err := New(Options{Sinks: sinks})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			_ = e.Emit(ctx, batch)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := e.Emit(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/sample")
		})
	}
}

// pollUntil re-checks cond every millisecond until it holds, failing
// after two minutes: for state that changes after the fakes' last call
// (a buffer's Ack), which their change tokens cannot announce.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
