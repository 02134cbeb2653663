package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/route"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/security/sectest"
)

// recipes/# is confidential; everything else internal (the default).
func testClassifier(t *testing.T) *route.Classifier {
	t.Helper()
	cl, err := route.NewClassifier(route.ClassificationConfig{Rules: []route.ClassRule{
		{Match: []string{"plant/recipes/#"}, Class: "confidential"},
		{Match: []string{"plant/line1/+"}, Class: "public"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func newRoute(t *testing.T, o route.Options) *route.Route {
	t.Helper()
	r, err := route.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// drainMem takes everything a memory buffer holds, in order.
func drainMem(t *testing.T, b buffer.Buffer) []model.Sample {
	t.Helper()
	var out []model.Sample
	for b.Stats().Depth > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		batch, err := b.Next(ctx, 1000)
		cancel()
		if err != nil {
			t.Fatalf("buffer Next: %v", err)
		}
		out = append(out, batch.Samples...)
		if err := b.Ack(batch); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func paths(s []model.Sample) map[string]int {
	m := map[string]int{}
	for _, x := range s {
		m[x.Path]++
	}
	return m
}

// mixed is one batch of line, recipe and quality samples.
func mixed(i int) []model.Sample {
	return []model.Sample{
		{Path: "plant/line1/speed", Value: model.Int(int64(i))},
		{Path: "plant/recipes/r1", Value: model.String("secret")},
		{Path: "plant/recipes/r2", Value: model.String("secret")},
		{Path: "plant/line2/temp", Value: model.Float(20), Quality: model.Quality{Code: model.Bad}},
	}
}

// A confidential tag never enters the buffer of a sink whose class is
// lower, even when its route includes it; a sink allowed confidential
// gets it; the denial is counted and reported once per sink and tag.
func TestRouteClassBoundary(t *testing.T) {
	rec := &sectest.Recorder{}
	cl := testClassifier(t)
	cloud := newRoute(t, route.Options{Sink: "cloud", Classifier: cl, Events: rec,
		Selection: route.Selection{Include: []string{"plant/#"}}})
	public := newRoute(t, route.Options{Sink: "public", Classifier: cl, Events: rec, MaxClass: route.Public,
		Selection: route.Selection{Include: []string{"plant/recipes/#", "plant/line1/#"}}})
	site := newRoute(t, route.Options{Sink: "site", Classifier: cl, Events: rec, MaxClass: route.Confidential})
	bufs := map[string]buffer.Buffer{}
	var sinks []SinkSpec
	for name, r := range map[string]*route.Route{"cloud": cloud, "public": public, "site": site, "raw": nil} {
		bufs[name] = buffer.NewMemory(1000, buffer.DropOldest)
		sinks = append(sinks, SinkSpec{Name: name, Sink: newSink(name), Buffer: bufs[name], Route: r})
	}
	e, err := New(Options{Sinks: sinks, TickInterval: -1, FirstSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := e.Emit(context.Background(), mixed(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		sink string
		want map[string]int
	}{
		{"cloud", map[string]int{"plant/line1/speed": 5, "plant/line2/temp": 5}},
		{"public", map[string]int{"plant/line1/speed": 5}},
		{"site", map[string]int{"plant/line1/speed": 5, "plant/line2/temp": 5, "plant/recipes/r1": 5, "plant/recipes/r2": 5}},
		{"raw", map[string]int{"plant/line1/speed": 5, "plant/line2/temp": 5, "plant/recipes/r1": 5, "plant/recipes/r2": 5}},
	} {
		t.Run(tc.sink, func(t *testing.T) {
			got := paths(drainMem(t, bufs[tc.sink]))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("buffer got %v, want %v", got, tc.want)
			}
		})
	}
	if c := cloud.Counters(); c.Denied != 10 || c.In != 20 || c.Filtered != 0 || c.ChainIn != 10 {
		t.Errorf("cloud counters %+v, want 20 in, 10 denied, 10 through", c)
	}
	evs := rec.Events()
	got := map[string]int{}
	for _, ev := range evs {
		if ev.Kind != security.EgressDenied || ev.Outcome != "denied" {
			t.Errorf("unexpected event %+v", ev)
		}
		got[ev.Component+" "+ev.Object]++
		if !strings.Contains(ev.Detail, "confidential") {
			t.Errorf("event detail %q does not name the tag's class", ev.Detail)
		}
	}
	want := map[string]int{"cloud plant/recipes/r1": 1, "cloud plant/recipes/r2": 1, "public plant/recipes/r1": 1, "public plant/recipes/r2": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %v, want one per sink and tag %v", got, want)
	}
	// The status carries the route counters.
	cs := component(t, e.Status(), "sink", "cloud")
	if cs.Counters["route_denied_samples"] != 10 || cs.Counters["route_in_samples"] != 20 {
		t.Errorf("status counters %v", cs.Counters)
	}
	if _, ok := component(t, e.Status(), "sink", "raw").Counters["route_in_samples"]; ok {
		t.Error("a sink without a route reports route counters")
	}
}

// evenOnly is a per-sink filter: it keeps samples with even values.
type evenOnly struct{}

func (evenOnly) Process(b []model.Sample) []model.Sample {
	out := b[:0]
	for _, s := range b {
		if s.Value.AsInt()%2 == 0 {
			out = append(out, s)
		}
	}
	return out
}

// chainSeen is a shared-chain stage standing for the rules: it counts what
// passes.
type chainSeen struct{ n int }

func (s *chainSeen) Process(b []model.Sample) []model.Sample { s.n += len(b); return b }

// Per-sink chains change only their own sink: one filters, one
// aggregates on ticks; the third sink and the shared chain (where the
// rules run) see every sample; aggregates get fresh, unique sequence ids.
func TestRouteChainsAreIsolated(t *testing.T) {
	rules := &chainSeen{}
	filt := newRoute(t, route.Options{Sink: "filt", Processors: []pipeline.Processor{evenOnly{}}, ProcessorNames: []string{"sink/filt/even"}})
	win := newRoute(t, route.Options{Sink: "win", Processors: []pipeline.Processor{&windowCount{}, doubler{}}})
	plain := newRoute(t, route.Options{Sink: "plain"})
	bufs := map[string]buffer.Buffer{}
	var sinks []SinkSpec
	for _, x := range []struct {
		name string
		r    *route.Route
	}{{"filt", filt}, {"win", win}, {"plain", plain}} {
		bufs[x.name] = buffer.NewMemory(1000, buffer.DropOldest)
		sinks = append(sinks, SinkSpec{Name: x.name, Sink: newSink(x.name), Buffer: bufs[x.name], Route: x.r})
	}
	e, err := New(Options{Processors: []pipeline.Processor{rules}, Sinks: sinks, TickInterval: -1, FirstSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, b := range batches("a/b", 10, 3) {
		if err := e.Emit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	clock := time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC)
	if err := e.Tick(ctx, clock); err != nil {
		t.Fatal(err)
	}
	if rules.n != 10 {
		t.Errorf("the shared chain saw %d samples, want every one (10)", rules.n)
	}
	gotFilt, gotWin, gotPlain := drainMem(t, bufs["filt"]), drainMem(t, bufs["win"]), drainMem(t, bufs["plain"])
	if v := values(gotFilt); fmt.Sprint(v) != "[2 4 6 8 10]" {
		t.Errorf("filtered sink got %v", v)
	}
	if v := values(gotPlain); fmt.Sprint(v) != fmt.Sprint(upTo(10)) {
		t.Errorf("plain sink got %v, want every sample", v)
	}
	if len(gotWin) != 1 || gotWin[0].Path != "agg/count" || gotWin[0].Value.AsInt() != 20 {
		t.Fatalf("window sink got %+v, want one aggregate of 10 (doubled by the rest of its chain)", gotWin)
	}
	used := map[uint64]bool{}
	for _, s := range gotPlain {
		used[s.Seq] = true
	}
	if s := gotWin[0].Seq; s == 0 || used[s] {
		t.Errorf("aggregate has seq %d, want a fresh id", s)
	}
	// A tick with nothing new flushes nothing and pushes nothing.
	if err := e.Tick(ctx, clock.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := bufs["win"].Stats().Depth; d != 0 {
		t.Errorf("an empty window pushed %d samples", d)
	}
	// Metrics add up per sink: in = filtered + denied + chain_in, and
	// chain_out is what entered the buffer.
	for name, want := range map[string]uint64{"filt": 5, "win": 1, "plain": 10} {
		c := component(t, e.Status(), "sink", name).Counters
		if c["route_in_samples"] != c["route_filtered_samples"]+c["route_denied_samples"]+c["route_chain_in_samples"] {
			t.Errorf("%s: counters do not add up: %v", name, c)
		}
		if c["route_chain_out_samples"] != want {
			t.Errorf("%s: chain_out %d, want %d (pushed into the buffer)", name, c["route_chain_out_samples"], want)
		}
		if c["route_in_bytes"] == 0 || (want > 0 && c["route_out_bytes"] == 0) {
			t.Errorf("%s: bytes not counted: %v", name, c)
		}
	}
}

// A live classification change applies at one cut, to every route,
// without restarting a sink.
func TestApplyClassificationLive(t *testing.T) {
	r := newRoute(t, route.Options{Sink: "cloud"}) // nil classifier: every tag internal
	sink := newSink("cloud")
	buf := buffer.NewMemory(1000, buffer.Block)
	eng := start(t, Options{Sinks: []SinkSpec{{Name: "cloud", Sink: sink, Buffer: buf, Route: r}}})
	ctx := context.Background()
	if err := eng.Emit(ctx, mixed(1)); err != nil {
		t.Fatal(err)
	}
	sink.waitCount(t, 4)
	if err := eng.Apply(ctx, Change{Classification: &Classification{Classifier: testClassifier(t)}}); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if err := eng.Emit(ctx, mixed(2)); err != nil {
		t.Fatal(err)
	}
	sink.waitCount(t, 6)
	got := paths(sink.received())
	if got["plant/recipes/r1"] != 1 || got["plant/line1/speed"] != 2 {
		t.Errorf("after the change the sink got %v; want recipes only from before it", got)
	}
	if c, _, _ := sink.calls(); c != 1 {
		t.Errorf("sink connected %d times, want 1 (no restart)", c)
	}
}

// Order per tag and at-least-once hold per routed sink across an engine
// restart with a durable buffer.
func TestRouteDurableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *durable.Buffer {
		b, err := durable.Open(durable.Config{Dir: dir, MaxBytes: 64 << 20}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mk := func() *route.Route {
		return newRoute(t, route.Options{Sink: "k", Selection: route.Selection{Include: []string{"keep/#"}},
			Processors: []pipeline.Processor{evenOnly{}}})
	}
	// Run 1: the sink is down; everything the route lets through stays
	// in the buffer.
	buf := open()
	down := newSink("k")
	down.connect = func(ctx context.Context, _ int) error { <-ctx.Done(); return ctx.Err() }
	e1 := start(t, Options{Sinks: []SinkSpec{{Name: "k", Sink: down, Buffer: buf, Route: mk()}}})
	ctx := context.Background()
	for _, b := range batches("keep/a", 20, 4) {
		b = append(b, samples("drop/b", 1, 2)...)
		b = append(b, samples("keep/c", len(b), 1)...)
		if err := e1.Emit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err, _ := e1.stop(t); err != nil {
		t.Fatalf("Run 1 = %v", err)
	}
	// Run 2: a new engine on the same buffer delivers it all, in order.
	up := newSink("k")
	start(t, Options{Sinks: []SinkSpec{{Name: "k", Sink: up, Buffer: open(), Route: mk()}}, FirstSeq: 1000})
	up.waitCount(t, 10+1)
	var a []int64
	for _, s := range up.received() {
		switch s.Path {
		case "keep/a":
			a = append(a, s.Value.AsInt())
		case "keep/c":
		default:
			t.Errorf("unselected tag %s delivered", s.Path)
		}
	}
	if fmt.Sprint(a) != "[2 4 6 8 10 12 14 16 18 20]" {
		t.Errorf("keep/a delivered %v, want every even value once, in order", a)
	}
}
