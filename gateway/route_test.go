package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/route"
	"github.com/weir-edge/weir/security"
)

// A changed route restarts that sink alone; a changed classification is
// applied live to every route, restarting none, and a tag it puts above a
// sink's class is held back and reported once.
func TestApplyRouteAndClassification(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "a", "b")
	g, events, _ := startFromFile(t, dir, text)
	eng := g.Engine()
	routeIn := func(sink string) uint64 { return counter(eng, "sink", sink, "route_in_samples") }
	waitFor(t, "samples through both routes", func() bool { return routeIn("a") > 0 && routeIn("b") > 0 })

	routed := strings.Replace(text, "client_id: apply-b}\n", "client_id: apply-b}\n    max_class: public\n    route: {include: [\"plant/none/#\"]}\n", 1)
	res, err := (configManager{g}).Apply(context.Background(), []byte(routed), "api:eve", true)
	if err != nil || !res.Applied || res.Summary != "sinks: ~b" {
		t.Fatalf("apply route = %+v, %v", res, err)
	}
	aBefore := routeIn("a")
	waitFor(t, "b's new route to filter what it receives", func() bool {
		return counter(eng, "sink", "b", "route_filtered_samples") > 0
	})
	if st, _ := sinkStatus(eng, "b"); st.Counters["route_filtered_samples"] != st.Counters["route_in_samples"] {
		t.Errorf("b's route let samples through: %v", st.Counters)
	}

	classified := routed + "classification:\n  rules:\n    - {match: [\"plant/plc1/#\"], class: confidential}\n"
	res, err = (configManager{g}).Apply(context.Background(), []byte(classified), "api:eve", true)
	if err != nil || !res.Applied || res.Summary != "live: classification" || len(res.RestartNeeded) > 0 {
		t.Fatalf("apply classification = %+v, %v", res, err)
	}
	waitFor(t, "a's route to hold back the confidential tags", func() bool {
		return counter(eng, "sink", "a", "route_denied_samples") > 0
	})
	if got := routeIn("a"); got < aBefore {
		t.Errorf("a's route counters went back from %d to %d: the sink was restarted", aBefore, got)
	}
	denied := counter(eng, "sink", "a", "route_denied_samples")
	waitFor(t, "more samples held back", func() bool { return counter(eng, "sink", "a", "route_denied_samples") > denied+4 })
	perTag := map[string]int{}
	for _, ev := range events.Events() {
		if ev.Kind == security.EgressDenied {
			if ev.Component != "a" || !strings.HasPrefix(ev.Object, "plant/plc1/") {
				t.Errorf("event %+v", ev)
			}
			perTag[ev.Object]++
		}
	}
	if len(perTag) == 0 {
		t.Fatal("no flow.egress_denied event")
	}
	for tag, n := range perTag {
		if n != 1 {
			t.Errorf("tag %s reported %d times, want once", tag, n)
		}
	}
}

// "Once per sink and tag" holds across a reload that replaces the sink:
// the gateway hands the new route the sink's set of reported tags. A sink
// removed and added back starts afresh.
func TestEgressDeniedOnceAcrossReload(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "a", "b") +
		"classification:\n  rules:\n    - {match: [\"plant/plc1/#\"], class: confidential}\n"
	g, events, _ := startFromFile(t, dir, text)
	eng := g.Engine()
	perTag := func() map[string]int {
		m := map[string]int{}
		for _, ev := range events.Events() {
			if ev.Kind == security.EgressDenied && ev.Component == "a" {
				m[ev.Object]++
			}
		}
		return m
	}
	denied := func() uint64 { return counter(eng, "sink", "a", "route_denied_samples") }
	waitFor(t, "a's route to hold back the confidential tags", func() bool { return denied() > 0 })
	waitFor(t, "a's route to hold back more", func() bool { return denied() > 20 })
	tags := len(perTag())
	if tags == 0 {
		t.Fatal("no flow.egress_denied event for a")
	}

	steps := []struct {
		name, text, summary string
		want                int // events per tag afterwards
	}{
		{"route changed: a replaced", strings.Replace(text, "client_id: apply-a}\n",
			"client_id: apply-a}\n    route: {exclude: [\"plant/none/#\"]}\n", 1), "sinks: ~a", 1},
		{"a removed", offlineConfig(t, dir, plc, "b") +
			"classification:\n  rules:\n    - {match: [\"plant/plc1/#\"], class: confidential}\n", "sinks: -a", 1},
		{"a added back: a new sink", text, "sinks: +a", 2},
	}
	for _, st := range steps {
		res, err := (configManager{g}).Apply(context.Background(), []byte(st.text), "api:eve", true)
		if err != nil || !res.Applied || res.Summary != st.summary {
			t.Fatalf("%s: apply = %+v, %v", st.name, res, err)
		}
		if st.summary == "sinks: -a" {
			continue
		}
		// The new route's counters start at 0; once it held back as
		// many samples as before, it has met every tag again.
		waitFor(t, st.name+": the new route to hold back every tag", func() bool { return denied() > 20 })
		got := perTag()
		if len(got) != tags {
			t.Errorf("%s: %d tags reported, want %d", st.name, len(got), tags)
		}
		for tag, n := range got {
			if n != st.want {
				t.Errorf("%s: tag %s reported %d times, want %d", st.name, tag, n, st.want)
			}
		}
	}
}

// The gateway's per-sink-name sets: the same set for a sink rebuilt with
// the same max_class, a new one when its class changed, none kept for a
// sink no longer running (or running without a route).
func TestDeniedSetPerSinkName(t *testing.T) {
	g := &Gateway{}
	a := g.deniedSet("a", route.Internal)
	tests := []struct {
		name  string
		sink  string
		class route.Class
		same  bool // the set a was given
	}{
		{"rebuilt, same class", "a", route.Internal, true},
		{"another sink", "b", route.Internal, false},
		{"class changed: a new policy", "a", route.Public, false},
	}
	for _, tc := range tests {
		if got := g.deniedSet(tc.sink, tc.class); (got == a) != tc.same {
			t.Errorf("%s: same set %v, want %v", tc.name, got == a, tc.same)
		}
	}
	b := g.denied["b"]
	g.pruneDenied([]engine.SinkSpec{{Name: "b", Route: &route.Route{}}, {Name: "c"}})
	if len(g.denied) != 1 || g.denied["b"] != b {
		t.Errorf("after pruning to b (routed) and c (no route): %v, want b's set only", g.denied)
	}
}
