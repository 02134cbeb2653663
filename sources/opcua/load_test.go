package opcua

import (
	"fmt"
	"os"
	"testing"
	"time"

	simopcua "github.com/weir-edge/weir/sim/opcua"
)

// TestManyMonitoredItems subscribes to n items on one session, each
// changing every 100 ms on the simulator, and checks that every item
// keeps arriving, in order and without duplicates, and that the simulator
// dropped nothing. n is 1,000, or 10,000 with WEIR_OPCUA_LOAD=1; the
// figures are logged (go test -v).
func TestManyMonitoredItems(t *testing.T) {
	if testing.Short() {
		t.Skip("load test; skipped with -short")
	}
	n, window := 1000, 2*time.Second
	if os.Getenv("WEIR_OPCUA_LOAD") == "1" {
		n, window = 10000, 5*time.Second
	}
	srv := serveSim(t, simopcua.Options{BenchNodes: n, Refresh: 100 * time.Millisecond})
	cfg := insecure(srv.Endpoint())
	cfg.BatchSize = 1000
	sub := SubscriptionConfig{PublishingInterval: 100 * time.Millisecond}
	for i := range n {
		sub.Items = append(sub.Items, ItemConfig{Name: fmt.Sprintf("b/%05d", i), NodeID: fmt.Sprintf("ns=1;s=bench.%05d", i), SamplingInterval: 100 * time.Millisecond})
	}
	cfg.Subscriptions = []SubscriptionConfig{sub}
	src := mustNew(t, cfg)
	rec := newRecorder()
	start := time.Now()
	startSource(t, src, rec)
	rec.waitFor(t, 60*time.Second, "every item once", func() bool { return rec.paths() == n })
	ready := time.Since(start)
	base := map[string]int{}
	for i := range n {
		p := fmt.Sprintf("plant/b/%05d", i)
		base[p] = rec.count(p)
	}
	notif0, t0 := src.Status().Counters["notifications"], time.Now()
	<-time.After(window) // measuring throughput over a fixed window is the point here
	notif1, el := src.Status().Counters["notifications"], time.Since(t0)
	refreshes := el.Seconds() / 0.1
	minUpdates, total := 1<<30, 0
	for p, b := range base {
		s := rec.samples(p)
		for i := 1; i < len(s); i++ {
			if s[i].Value.AsFloat() <= s[i-1].Value.AsFloat() || s[i].SourceTime <= s[i-1].SourceTime {
				t.Fatalf("%s out of order or duplicated: %v then %v", p, s[i-1], s[i])
			}
		}
		u := len(s) - b
		total += u
		minUpdates = min(minUpdates, u)
	}
	rate := float64(notif1-notif0) / el.Seconds()
	t.Logf("%d items on one session: all delivered %v after start; %.0f notifications/s over %v (%.0f refreshes); per item min %d updates, mean %.1f; simulator dropped %d",
		n, ready.Round(time.Millisecond), rate, el.Round(time.Millisecond), refreshes, minUpdates, float64(total)/float64(n), srv.Stats().Dropped)
	if float64(minUpdates) < refreshes/3 {
		t.Errorf("an item got only %d updates in %.0f refreshes", minUpdates, refreshes)
	}
	if srv.Stats().Dropped != 0 {
		t.Errorf("simulator dropped %d notifications", srv.Stats().Dropped)
	}
	if f := src.Status().Counters["session_failures"]; f != 0 {
		t.Errorf("%d session failures", f)
	}
}
