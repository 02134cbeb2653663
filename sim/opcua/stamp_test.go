package simopcua

import (
	"context"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/server"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
)

// TestOneChangeOneTimestamp drives the refresh by hand and interleaves
// the read that gopcua's server does for a new monitored item: its
// CreateMonitoredItems starts a goroutine per item that later takes the
// monitored-item lock, reads the node's current value and queues it, at
// any moment relative to a refresh. Whatever the interleaving, the queue
// must carry every change once with one source timestamp, in order: a
// value seen twice with two timestamps is what a client reports as
// "out of order or duplicated" (TestManyMonitoredItems did, on a loaded
// machine, with 0.27 s between the two stamps of one value).
func TestOneChangeOneTimestamp(t *testing.T) {
	s := serve(t, nil, Options{Refresh: time.Hour, BenchNodes: 1}) // the ticker never fires
	nid := ua.NewStringNodeID(1, "bench.00000")
	q := fakeItem(t, s, nid)
	initialRead := func() { s.srv.MonitoredItemService.ChangeNotification(nid) }

	for round := range 3 {
		changed := s.refresh()
		initialRead() // between the refresh and its notification
		s.notify(context.Background(), changed)
		initialRead() // after it
		if round == 1 {
			initialRead()
		}
	}
	var got []*ua.DataValue
	for len(q) > 0 {
		got = append(got, (<-q).Value)
	}
	if len(got) < 4 {
		t.Fatalf("%d notifications queued", len(got))
	}
	stamps := map[float64]time.Time{}
	last := -1.0
	for i, dv := range got {
		v := dv.Value.Value().(float64)
		if v < last {
			t.Errorf("notification %d: value %v after %v", i, v, last)
		}
		last = v
		if ts, ok := stamps[v]; ok && !ts.Equal(dv.SourceTimestamp) {
			t.Errorf("value %v queued with two source timestamps, %v and %v", v, ts.Format(time.StampMicro), dv.SourceTimestamp.Format(time.StampMicro))
		}
		stamps[v] = dv.SourceTimestamp
	}
	if last != 3 {
		t.Errorf("last value %v, want 3", last)
	}
	// A Read agrees with what the subscription got.
	if dv := s.space.Attribute(nid, ua.AttributeIDValue); !dv.SourceTimestamp.Equal(stamps[3]) {
		t.Errorf("Read stamps value 3 %v, the subscription %v", dv.SourceTimestamp, stamps[3])
	}
}

// fakeItem registers a monitored item on nid with the library's
// monitored-item service, as CreateMonitoredItems does, and returns the
// queue its notifications go to.
func fakeItem(t *testing.T, s *Server, nid *ua.NodeID) chan *ua.MonitoredItemNotification {
	t.Helper()
	mis := s.srv.MonitoredItemService
	sub := server.NewSubscription()
	it := &server.MonitoredItem{ID: 1 << 30, Sub: sub, Req: opcua.NewMonitoredItemCreateRequestWithDefaults(nid, ua.AttributeIDValue, 7)}
	mis.Mu.Lock()
	mis.Nodes[nid.String()] = append(mis.Nodes[nid.String()], it)
	mis.Mu.Unlock()
	t.Cleanup(func() {
		mis.Mu.Lock()
		delete(mis.Nodes, nid.String())
		mis.Mu.Unlock()
	})
	return sub.NotifyChannel
}
