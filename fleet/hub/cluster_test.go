package hub_test

import (
	"testing"
	"time"

	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/fleet/hub"
	"github.com/weir-edge/weir/fleet/hub/hubtest"
)

// TestClusterNodeLoss: a hub on an external 3-node NATS cluster (trusting
// the hub through its own nats-resolver.conf) keeps publishing and
// answering sites with one node down, and the node catches up on return.
func TestClusterNodeLoss(t *testing.T) {
	c := hubtest.StartCluster(t)
	h := c.StartHub(t, nil)
	ctx := ctxT(t)
	s1 := h.Enroll(t, "s1")
	if _, err := h.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml")); err != nil {
		t.Fatal(err)
	}
	nc := s1.Connect(t, c.URL())
	sub, err := nc.SubscribeSync(hub.SubjectDesiredPrefix + "s1")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()

	c.Kill(0)
	res, err := h.Publish(ctx, ref(t, "site:s1"), readLayer(t, "site-s1.yaml"))
	if err != nil || res.Versions["s1"] != 2 {
		t.Fatalf("publish with a node down: %v %v", res, err)
	}
	m, err := sub.NextMsg(2 * time.Minute)
	if err != nil {
		t.Fatalf("site did not receive version 2 with a node down: %v", err)
	}
	b, err := bundle.Decode(m.Data)
	if err != nil || b.Version != 2 || s1.Trust.Verify(b, time.Now()) != nil {
		t.Fatalf("received %v %v", b, err)
	}
	s2 := h.Enroll(t, "s2")
	c.Restart(t, 0)
	if got, _ := h.Desired(ctx, "s2"); got == nil || got.Version != 1 {
		t.Fatalf("s2 enrolled with a node down: desired %v", got)
	}
	_ = s2
}
