package opcua

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
)

// TestConsumeOrderAcrossResponses feeds the notification loop crafted
// publish responses, so ordering is checked without a server or timing:
// items in a server's (random) order, one interval split over several
// responses (max_notifications_per_publish) with an item in two of them
// (queue size 2), a notification larger than emitChunk, and responses
// delivered again as a Republish or a rebuilt session's initial values
// would. Every item must come out once per value, in the order of its
// source timestamps.
func TestConsumeOrderAcrossResponses(t *testing.T) {
	const n = 2*emitChunk + 500 // three pieces per full notification
	cfg := insecure("opc.tcp://127.0.0.1:4840")
	sub := SubscriptionConfig{PublishingInterval: 100 * time.Millisecond}
	for i := range n {
		sub.Items = append(sub.Items, ItemConfig{Name: fmt.Sprintf("b/%05d", i), NodeID: fmt.Sprintf("ns=1;s=bench.%05d", i)})
	}
	cfg.Subscriptions = []SubscriptionConfig{sub}
	src := mustNew(t, cfg)

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mi := func(h int, v float64) *ua.MonitoredItemNotification {
		at := t0.Add(time.Duration(v*100) * time.Millisecond)
		return &ua.MonitoredItemNotification{ClientHandle: uint32(h), Value: &ua.DataValue{
			EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
			Value:        ua.MustVariant(v), SourceTimestamp: at, ServerTimestamp: at}}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// interval is every item at value v, in a random order.
	interval := func(v float64) []*ua.MonitoredItemNotification {
		var out []*ua.MonitoredItemNotification
		for _, h := range rng.Perm(n) {
			out = append(out, mi(h, v))
		}
		return out
	}
	resp := func(items ...*ua.MonitoredItemNotification) *opcua.PublishNotificationData {
		return &opcua.PublishNotificationData{SubscriptionID: 1, Value: &ua.DataChangeNotification{MonitoredItems: items}}
	}
	var feed []*opcua.PublishNotificationData
	add := func(items []*ua.MonitoredItemNotification) { feed = append(feed, resp(items...)) }

	add(interval(1))
	v2 := interval(2)
	add(v2[:700]) // interval 2 in three responses of at most 700 (a real server's split)
	add(v2[700:1400])
	add(append(v2[1400:], mi(0, 2.5))) // item 0 again in the same interval (queue size 2)
	add(v2[:700])                      // a republished response: already delivered
	last := interval(3)
	add(last)
	add(interval(3)) // a rebuilt session's initial values: the same values and stamps
	add(append(interval(4), mi(n-1, 4.5), mi(1, 4.5)))

	ch := make(chan *opcua.PublishNotificationData, len(feed)+1)
	for _, f := range feed {
		ch <- f
	}
	end := errors.New("end of feed")
	ch <- &opcua.PublishNotificationData{SubscriptionID: 1, Error: end}
	rec := newRecorder()
	var lastRx atomic.Int64
	if err := src.consume(context.Background(), ch, rec, &lastRx); !errors.Is(err, end) {
		t.Fatalf("consume returned %v", err)
	}

	for h := range n {
		p := fmt.Sprintf("plant/b/%05d", h)
		want := []float64{1, 2, 3, 4}
		switch h {
		case 0:
			want = []float64{1, 2, 2.5, 3, 4}
		case 1, n - 1:
			want = []float64{1, 2, 3, 4, 4.5}
		}
		s := rec.samples(p)
		var got []float64
		for i, smp := range s {
			got = append(got, smp.Value.AsFloat())
			if i > 0 && smp.SourceTime <= s[i-1].SourceTime {
				t.Fatalf("%s: source time went from %d to %d", p, s[i-1].SourceTime, smp.SourceTime)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: got values %v, want %v", p, got, want)
		}
	}
	if d, want := src.Status().Counters["duplicates"], uint64(700+n); d != want {
		t.Errorf("duplicates = %d, want %d (the republished response and the repeated interval)", d, want)
	}
	if b := rec.largestBatch(); b > emitChunk {
		t.Errorf("a batch of %d samples, more than emitChunk (%d)", b, emitChunk)
	}
}
