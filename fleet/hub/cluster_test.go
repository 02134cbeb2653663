package hub_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
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

// TestEmbeddedCluster: three hub replicas, each with its embedded NATS
// node, form one cluster (cluster: option; buckets replicated 3 ways);
// with one replica and its node gone, the other two publish and serve.
func TestEmbeddedCluster(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	if _, err := hub.Init(dirs[0]); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs[1:] {
		if err := os.CopyFS(filepath.Join(d, "keys"), os.DirFS(filepath.Join(dirs[0], "keys"))); err != nil {
			t.Fatal(err)
		}
	}
	routes := make([]string, 3)
	listens := make([]string, 3)
	for i := range routes {
		listens[i] = "127.0.0.1:" + strconv.Itoa(freePort(t))
		routes[i] = "nats-route://" + listens[i]
	}
	hubs := make([]*hubtest.Hub, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range hubs {
		wg.Add(1)
		go func() { // each start waits for the cluster's meta leader: together
			defer wg.Done()
			var others []string
			for j, r := range routes {
				if j != i {
					others = append(others, r)
				}
			}
			h, err := hubtest.Open(t, dirs[i], func(c *hub.Config) {
				c.Replica = fmt.Sprintf("hub%d", i)
				c.Cluster = hub.ClusterConfig{Listen: listens[i], Routes: others}
			})
			hubs[i], errs[i] = h, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	ctx := ctxT(t)
	s1 := hubs[0].Enroll(t, "s1")
	if _, err := hubs[1].Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml")); err != nil {
		t.Fatal(err)
	}
	nc := s1.Connect(t, hubs[2].URL)
	sub, err := nc.SubscribeSync(hub.SubjectDesiredPrefix + "s1")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	hubs[0].Close()
	res, err := hubs[1].Publish(ctx, ref(t, "site:s1"), readLayer(t, "site-s1.yaml"))
	if err != nil || res.Versions["s1"] != 2 {
		t.Fatalf("publish with one replica and its node gone: %v %v", res, err)
	}
	m, err := sub.NextMsg(2 * time.Minute)
	if err != nil {
		t.Fatalf("site did not receive version 2: %v", err)
	}
	if b, err := bundle.Decode(m.Data); err != nil || b.Version != 2 {
		t.Fatalf("received %v %v", b, err)
	}
	// The desired-state request is answered by a remaining replica.
	if r, err := nc.RequestWithContext(ctx, hub.SubjectAskDesired+"s1", nil); err != nil || len(r.Data) == 0 {
		t.Fatalf("desired-state request with one replica gone: %v", err)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
