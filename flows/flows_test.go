package flows

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/pipeline"
)

// fakeEngine is a status that tests move forward by hand, with a clock.
type fakeEngine struct {
	mu  sync.Mutex
	now time.Time
	st  engine.Status
}

func (f *fakeEngine) Status() engine.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Copy what a caller may keep while the test changes the original.
	st := f.st
	st.Components = nil
	for _, c := range f.st.Components {
		cc := c
		cc.Counters = map[string]uint64{}
		for k, v := range c.Counters {
			cc.Counters[k] = v
		}
		if c.Buffer != nil {
			b := *c.Buffer
			cc.Buffer = &b
		}
		st.Components = append(st.Components, cc)
	}
	return st
}

func (f *fakeEngine) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

// step advances the clock by d and adds to the counters.
func (f *fakeEngine) step(d time.Duration, emitted, filtered uint64, add map[string]map[string]uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.st.Emitted += emitted
	f.st.Filtered += filtered
	for i := range f.st.Components {
		for k, v := range add[f.st.Components[i].Name] {
			f.st.Components[i].Counters[k] += v
		}
	}
}

func component(kind, name string, counters map[string]uint64) engine.ComponentStatus {
	c := engine.ComponentStatus{Kind: kind, Status: pipeline.Status{Name: name, State: pipeline.StateRunning, Counters: counters}, Up: true}
	if kind == "sink" {
		c.Buffer = &buffer.Stats{Depth: 3, Capacity: 100}
	}
	return c
}

func newFake() *fakeEngine {
	return &fakeEngine{now: time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC), st: engine.Status{Components: []engine.ComponentStatus{
		component("source", "plc", map[string]uint64{"samples": 0}),
		component("processor", "db", nil),
		component("sink", "cloud", map[string]uint64{"route_in_samples": 0, "route_denied_samples": 0, "samples_written": 0, "wire_bytes": 0}),
		component("sink", "broker", map[string]uint64{"samples_written": 0}),
		component("sink", "extra", map[string]uint64{}),
	}}}
}

var topo = Topology{
	Sources: []SourceInfo{{Name: "plc", Kind: "modbus"}},
	Chain:   []string{"db", "rules"},
	Sinks: []SinkInfo{
		{Name: "cloud", Kind: "kafka", MaxClass: "public", Route: Route{Include: []string{"plant/+/temp"}, Exclude: []string{"plant/secret/#"}, Quality: "good", Processors: []string{"window"}}},
		{Name: "broker", Kind: "mqtt"},
	},
}

func TestMapRates(t *testing.T) {
	defer goleak.VerifyNone(t)
	type step struct {
		d                 time.Duration
		emitted, filtered uint64
		add               map[string]map[string]uint64
		take              bool
	}
	tests := []struct {
		name    string
		window  int
		steps   []step
		wantWin float64
		// want per-second rates
		source, chainIn, chainOut, cloudIn, cloudSent, cloudDenied float64
		cloudDeniedTotal                                           uint64
	}{
		{name: "no snapshot: totals, no rates", steps: []step{{d: time.Second, emitted: 10, add: map[string]map[string]uint64{"plc": {"samples": 10}}}}},
		{name: "one snapshot then 2 s", window: 11, steps: []step{
			{take: true},
			{d: 2 * time.Second, emitted: 200, filtered: 20, add: map[string]map[string]uint64{"plc": {"samples": 200}, "cloud": {"route_in_samples": 180, "samples_written": 40, "route_denied_samples": 4}}},
		}, wantWin: 2, source: 100, chainIn: 100, chainOut: 90, cloudIn: 90, cloudSent: 20, cloudDenied: 2, cloudDeniedTotal: 4},
		{name: "ring keeps the last 3: the window slides", window: 3, steps: []step{
			{take: true},
			{d: time.Second, emitted: 1000, add: map[string]map[string]uint64{"plc": {"samples": 1000}}, take: true},
			{d: time.Second, emitted: 10, add: map[string]map[string]uint64{"plc": {"samples": 10}}, take: true},
			{d: time.Second, emitted: 10, add: map[string]map[string]uint64{"plc": {"samples": 10}}, take: true},
			{d: time.Second, emitted: 10, add: map[string]map[string]uint64{"plc": {"samples": 10}}},
		}, wantWin: 3, source: 10, chainIn: 10, chainOut: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			s := New(Options{Status: f.Status, Topology: func() Topology { return topo }, Now: f.clock, Window: tc.window, Node: "gw"})
			for _, st := range tc.steps {
				f.step(st.d, st.emitted, st.filtered, st.add)
				if st.take {
					s.Take()
				}
			}
			m := s.Map()
			if m.WindowSeconds != tc.wantWin {
				t.Errorf("window %v s, want %v", m.WindowSeconds, tc.wantWin)
			}
			src := m.Sources[0]
			if src.Name != "plc" || src.Kind != "modbus" || src.Samples.PerSecond != tc.source {
				t.Errorf("source %+v, want plc modbus at %v/s", src, tc.source)
			}
			if m.Chain.In.PerSecond != tc.chainIn || m.Chain.Out.PerSecond != tc.chainOut {
				t.Errorf("chain %+v, want in %v/s out %v/s", m.Chain, tc.chainIn, tc.chainOut)
			}
			cloud := m.Sinks[0]
			if cloud.Name != "cloud" || cloud.In.PerSecond != tc.cloudIn || cloud.Written.PerSecond != tc.cloudSent ||
				cloud.Denied.PerSecond != tc.cloudDenied || cloud.Denied.Total != tc.cloudDeniedTotal {
				t.Errorf("cloud %+v, want in %v/s sent %v/s denied %v/s (%d)", cloud, tc.cloudIn, tc.cloudSent, tc.cloudDenied, tc.cloudDeniedTotal)
			}
		})
	}
}

func TestMapTopology(t *testing.T) {
	f := newFake()
	m := New(Options{Status: f.Status, Topology: func() Topology { return topo }, Now: f.clock}).Map()
	var names []string
	for _, s := range m.Sinks {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "cloud,broker,extra" {
		t.Errorf("sinks in order %s, want the topology's, then the unknown: cloud,broker,extra", got)
	}
	cloud, broker, extra := m.Sinks[0], m.Sinks[1], m.Sinks[2]
	if cloud.Kind != "kafka" || cloud.MaxClass != "public" || !cloud.Routed || cloud.Route.Quality != "good" || cloud.BufferDepth != 3 {
		t.Errorf("cloud %+v", cloud)
	}
	if broker.MaxClass != "internal" || broker.Route.Quality != "any" || broker.Routed {
		t.Errorf("broker (defaults, no route counters) %+v", broker)
	}
	if extra.Kind != "" || extra.MaxClass != "internal" {
		t.Errorf("a sink the topology does not know: %+v", extra)
	}
	if got := strings.Join(m.Chain.Processors, ","); got != "db,rules" {
		t.Errorf("chain %s", got)
	}
}

// A counter that went down (a sink replaced by a reload) gives its new
// total over the window, never a negative rate.
func TestMapCounterReset(t *testing.T) {
	f := newFake()
	f.step(0, 0, 0, map[string]map[string]uint64{"cloud": {"samples_written": 500}})
	s := New(Options{Status: f.Status, Now: f.clock})
	s.Take()
	f.mu.Lock()
	f.now = f.now.Add(2 * time.Second)
	f.st.Components[2].Counters["samples_written"] = 10
	f.mu.Unlock()
	m := s.Map()
	if m.Sinks[1].Name != "cloud" {
		t.Fatalf("without a topology the sinks are by name: %+v", m.Sinks)
	}
	if got := m.Sinks[1].Written; got.Total != 10 || got.PerSecond != 5 {
		t.Errorf("after a reset: %+v, want 10 at 5/s", got)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newFake()
	s := New(Options{Status: f.Status, Interval: time.Millisecond, Window: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.After(2 * time.Minute)
	for {
		if _, ok := s.oldest(); ok {
			break
		}
		select {
		case <-deadline:
			t.Fatal("Run took no snapshot in 2 min")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return within 2 min of its context ending")
	}
	if len(s.ring) > 2 {
		t.Errorf("ring holds %d snapshots, bound 2", len(s.ring))
	}
}

func TestWriteText(t *testing.T) {
	f := newFake()
	s := New(Options{Status: f.Status, Topology: func() Topology { return topo }, Now: f.clock, Node: "gw"})
	s.Take()
	f.step(10*time.Second, 1000, 0, map[string]map[string]uint64{"plc": {"samples": 1000},
		"cloud": {"route_in_samples": 1000, "samples_written": 10, "route_denied_samples": 7, "wire_bytes": 25_000,
			"route_filtered_samples": 900, "route_chain_in_samples": 93, "route_chain_out_samples": 12, "route_in_bytes": 50_000, "route_out_bytes": 600}})
	var b bytes.Buffer
	if err := WriteText(&b, s.Map()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Data flows of gw at 2026-12-07 23:00:10Z, rates over the last 10 s",
		"plc     modbus  running  100",
		"shared chain: db → rules",
		"in 100/s, filtered 0/s, out 100/s",
		"cloud   kafka  running  public     100 → 1.0",
		"2.5 kB/s",
		"5.0 kB/s → 60 B/s",
		"IN = FILTERED + DENIED + CHAIN IN",
		"cloud   1000  900 (90.0/s)  7 (0.7/s)  93        12         10       0        50.0 kB   600 B      25.0 kB",
		"  include plant/+/temp exclude plant/secret/# quality good; processors window\n",
		"  every tag\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

// A sink replaced by a reload starts its counters again: its rates are
// over the time since it restarted, not over the whole window (which
// understated them for ~10 s), and the map says when. Fake clock: one
// snapshot a second; cloud writes 30 samples a second throughout.
func TestMapRatesAfterRestart(t *testing.T) {
	tests := []struct {
		name string
		// resetAt is the second (1…) at whose step cloud's counters go
		// back to 0 before adding that second's 30; 0: never.
		resetAt, seconds int
		takeLast         bool // a snapshot at the last second too
		wantRate         float64
		wantSpan         float64
		wantRestarted    bool
	}{
		{name: "no restart: over the window", seconds: 8, takeLast: true, wantRate: 30, wantSpan: 8},
		{name: "restarted 3 s ago: over the 2 s since the first snapshot after", resetAt: 6, seconds: 8, takeLast: true,
			wantRate: 30, wantSpan: 2, wantRestarted: true},
		{name: "restarted after the newest snapshot: from 0 over the second since", resetAt: 8, seconds: 8,
			wantRate: 30, wantSpan: 1, wantRestarted: true},
		{name: "restart left the window: over the window again", resetAt: 2, seconds: 16, takeLast: true, wantRate: 30, wantSpan: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			s := New(Options{Status: f.Status, Now: f.clock})
			s.Take()
			for sec := 1; sec <= tc.seconds; sec++ {
				if sec == tc.resetAt {
					f.mu.Lock()
					for k := range f.st.Components[2].Counters {
						f.st.Components[2].Counters[k] = 0
					}
					f.mu.Unlock()
				}
				f.step(time.Second, 0, 0, map[string]map[string]uint64{"cloud": {"samples_written": 30, "route_in_samples": 30}})
				if sec < tc.seconds || tc.takeLast {
					s.Take()
				}
			}
			m := s.Map()
			cloud := m.Sinks[1]
			if cloud.Name != "cloud" {
				t.Fatalf("sinks %+v", m.Sinks)
			}
			if cloud.Written.PerSecond != tc.wantRate || cloud.In.PerSecond != tc.wantRate || cloud.RateSeconds != tc.wantSpan {
				t.Errorf("written %+v in %+v over %v s, want %v/s over %v s", cloud.Written, cloud.In, cloud.RateSeconds, tc.wantRate, tc.wantSpan)
			}
			if got := !cloud.RestartedAfter.IsZero(); got != tc.wantRestarted {
				t.Errorf("restarted_after %v, want set: %v", cloud.RestartedAfter, tc.wantRestarted)
			}
			// The other sink did not restart: its span is the window.
			if other := m.Sinks[0]; other.RateSeconds != m.WindowSeconds || !other.RestartedAfter.IsZero() {
				t.Errorf("broker %+v, want rates over the window %v s", other.Restart, m.WindowSeconds)
			}
			var b bytes.Buffer
			if err := WriteText(&b, m); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(b.String(), "note: sink cloud restarted less than"); got != tc.wantRestarted {
				t.Errorf("text says cloud restarted: %v, want %v:\n%s", got, tc.wantRestarted, b.String())
			}
		})
	}
}

// Long route lists are cut in weir flows' table and kept whole by
// RouteText (weir validate) and in the JSON.
func TestRouteShort(t *testing.T) {
	tests := []struct {
		r           Route
		short, full string
	}{
		{Route{}, "every tag", "every tag"},
		{Route{Include: []string{"a/#", "b/#", "c/#"}}, "include a/#, b/#, c/#", "include a/#, b/#, c/#"},
		{Route{Exclude: []string{"a/1", "a/2", "a/3", "a/4", "a/5", "a/6"}, Quality: "good"},
			"every tag exclude a/1, a/2 …+4 more quality good", "every tag exclude a/1, a/2, a/3, a/4, a/5, a/6 quality good"},
		{Route{Include: []string{"x/#"}, Processors: []string{"p1", "p2", "p3", "p4"}},
			"include x/#; processors p1 → p2 …+2 more", "include x/#; processors p1 → p2 → p3 → p4"},
	}
	for _, tc := range tests {
		if got := RouteShort(tc.r); got != tc.short {
			t.Errorf("RouteShort(%+v) = %q, want %q", tc.r, got, tc.short)
		}
		if got := RouteText(tc.r); got != tc.full {
			t.Errorf("RouteText(%+v) = %q, want %q", tc.r, got, tc.full)
		}
	}
}
