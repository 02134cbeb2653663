package sinktest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/route"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/security/sectest"
)

// egressSink is the sink's name in the engine of the egress case.
const egressSink = "sut"

// testEgress proves the egress policy end to end for this sink kind: the
// sink runs in a real engine behind a route that includes every tag but
// may take no more than internal data, while a classification rule marks
// "sinktest/<id>/secret/#" confidential. Public and secret samples are
// emitted mixed; every public one must arrive, no secret one may, the
// route counts each secret sample as denied, and one security event is
// recorded per secret tag. The route, not the sink, holds the line: the
// sink is the unmodified implementation under test.
func testEgress(t *testing.T, h Harness) {
	id := strings.NewReplacer("/", "_").Replace(t.Name())
	secretPrefix := "sinktest/" + id + "/secret/"
	cl, err := route.NewClassifier(route.ClassificationConfig{
		Rules: []route.ClassRule{{Match: []string{secretPrefix + "#"}, Class: "confidential"}},
	})
	if err != nil {
		t.Fatalf("classifier: %v", err)
	}
	var events sectest.Recorder
	rt, err := route.New(route.Options{
		Sink:       egressSink,
		Selection:  route.Selection{Include: []string{"#"}}, // the route asks for everything
		MaxClass:   route.Internal,
		Classifier: cl,
		Events:     &events,
	})
	if err != nil {
		t.Fatalf("route.New: %v", err)
	}
	eng, err := engine.New(engine.Options{
		Sinks: []engine.SinkSpec{{
			Name:   egressSink,
			Sink:   h.New(t),
			Buffer: buffer.NewMemory(10_000, buffer.Block),
			Route:  rt,
		}},
		DrainTimeout: h.Timeout,
	})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("engine Run: %v", err)
			}
		case <-time.After(h.Timeout):
			t.Errorf("engine did not stop within %s", h.Timeout)
		}
	}()

	// 60 samples in batches of 10: every third one secret (two tags), the
	// rest public (three tags), so secret samples sit between public ones
	// in every batch, and the last sample is public.
	const n, per = 60, 10
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	var public, secret int
	secretTags := map[string]bool{}
	for first := 0; first < n; first += per {
		batch := make([]model.Sample, 0, per)
		for i := first; i < first+per; i++ {
			ts := base + int64(i)*int64(time.Millisecond)
			sm := model.Sample{Value: model.Float(float64(i) + 0.5), SourceTime: ts, EdgeTime: ts}
			if i%3 == 1 {
				sm.Path = fmt.Sprintf("%stag%d", secretPrefix, i%2)
				secret++
				secretTags[sm.Path] = true
			} else {
				sm.Path = fmt.Sprintf("sinktest/%s/pub/tag%d", id, i%3)
				public++
			}
			batch = append(batch, sm)
		}
		if err := eng.Emit(ctxT(t, h.Timeout), batch); err != nil {
			t.Fatalf("Emit: %v", err)
		}
	}

	// The engine stamps its own Seq; count distinct deliveries by Seq.
	isPublic := func(p string) bool { return strings.HasPrefix(p, "sinktest/"+id+"/pub/") }
	var got []model.Sample
	deadline := time.Now().Add(h.Timeout)
	tick := time.NewTicker(20 * time.Millisecond) // polling the destination, not synchronising
	defer tick.Stop()
	for {
		got = h.Received(t)
		seen := map[uint64]bool{}
		for _, s := range got {
			if isPublic(s.Path) {
				seen[s.Seq] = true
			}
		}
		if len(seen) >= public {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the %d public samples; have %d of them (%d samples in all); sink: %s",
				public, len(seen), len(got), sinkStatus(eng))
		}
		<-tick.C
	}
	for _, s := range got {
		if strings.HasPrefix(s.Path, secretPrefix) || strings.Contains(s.Path, "/secret/") {
			t.Fatalf("a confidential sample reached a sink whose max_class is internal: %s (seq %d)", s.Path, s.Seq)
		}
	}
	c := rt.Counters()
	if c.Denied != uint64(secret) {
		t.Errorf("route counted %d samples denied, want the %d secret samples emitted", c.Denied, secret)
	}
	if c.In != uint64(n) || c.Filtered != 0 || c.ChainIn != uint64(public) {
		t.Errorf("route counters %+v, want in %d = filtered 0 + denied %d + chain_in %d", c, n, secret, public)
	}
	denied := map[string]int{}
	for _, ev := range events.Events() {
		if ev.Kind != security.EgressDenied {
			continue
		}
		denied[ev.Object]++
		if ev.Component != egressSink {
			t.Errorf("egress event names component %q, want the sink %q", ev.Component, egressSink)
		}
	}
	for tag := range secretTags {
		if denied[tag] != 1 {
			t.Errorf("%d egress events for %s, want exactly 1 (once per sink and tag)", denied[tag], tag)
		}
	}
	if len(denied) != len(secretTags) {
		t.Errorf("egress events for %v, want one for each of %d secret tags", denied, len(secretTags))
	}
}

// sinkStatus describes the sink under test as the engine sees it, for a
// failure message.
func sinkStatus(eng *engine.Engine) string {
	for _, c := range eng.Status().Components {
		if c.Kind == "sink" && c.Name == egressSink {
			return fmt.Sprintf("state %s, up %v, last error %q, counters %v", c.State, c.Up, c.LastError, c.Counters)
		}
	}
	return "not in the engine's status"
}
