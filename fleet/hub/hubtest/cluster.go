package hubtest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/weir-edge/weir/fleet/hub"
)

// Cluster is a 3-node NATS cluster with JetStream, in this process, that
// trusts a hub's operator (configured from the hub's own
// keys/nats-resolver.conf, as an operator would configure theirs).
type Cluster struct {
	DataDir string
	conf    string
	nodes   []*server.Server
	ports   [][2]int // client, cluster
}

// StartCluster makes a hub identity in a temporary data dir and starts
// three nodes trusting it; they are shut down at the end of the test.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	dir := t.TempDir()
	conf, err := hub.Init(dir)
	if err != nil {
		t.Fatalf("hubtest: hub init: %v", err)
	}
	c := &Cluster{DataDir: dir, conf: conf, nodes: make([]*server.Server, 3), ports: make([][2]int, 3)}
	for i := range c.ports {
		c.ports[i] = [2]int{freePort(t), freePort(t)}
	}
	for i := range c.nodes {
		c.start(t, i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Kill(i)
		}
	})
	for i, s := range c.nodes {
		if !s.ReadyForConnections(2 * time.Minute) {
			t.Fatalf("hubtest: node %d not ready within 2 min", i)
		}
	}
	return c
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) start(t testing.TB, i int) {
	t.Helper()
	opts, err := server.ProcessConfigFile(c.conf)
	if err != nil {
		t.Fatalf("hubtest: %s: %v", c.conf, err)
	}
	opts.ServerName = fmt.Sprintf("n%d", i)
	opts.Host, opts.Port = "127.0.0.1", c.ports[i][0]
	opts.JetStream = true
	opts.StoreDir = filepath.Join(c.DataDir, fmt.Sprintf("node%d", i))
	opts.Cluster.Name = "weir"
	opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", c.ports[i][1]
	for j := range c.ports {
		if j != i {
			u := server.RoutesFromStr("nats://127.0.0.1:" + strconv.Itoa(c.ports[j][1]))
			opts.Routes = append(opts.Routes, u...)
		}
	}
	opts.NoSigs = true
	opts.Debug = os.Getenv("WEIR_HUB_LOG") == "2"
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("hubtest: node %d: %v", i, err)
	}
	if os.Getenv("WEIR_HUB_LOG") != "" {
		s.ConfigureLogger()
	}
	s.Start()
	c.nodes[i] = s
}

// URL lists every node's client URL (nats.Connect takes the list).
func (c *Cluster) URL() string {
	var us []string
	for _, p := range c.ports {
		us = append(us, "nats://127.0.0.1:"+strconv.Itoa(p[0]))
	}
	return strings.Join(us, ",")
}

// Kill shuts node i down (its state stays on disk).
func (c *Cluster) Kill(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

// Restart starts node i again on its ports and state.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	c.start(t, i)
	if !c.nodes[i].ReadyForConnections(2 * time.Minute) {
		t.Fatalf("hubtest: node %d not ready within 2 min of its restart", i)
	}
}

// StartHub runs a hub replica on the cluster (buckets replicated 3 ways).
func (c *Cluster) StartHub(t testing.TB, fn func(*hub.Config)) *Hub {
	t.Helper()
	return StartWith(t, c.DataDir, func(cfg *hub.Config) {
		cfg.NATSURL = c.URL()
		cfg.Replicas = 3
		if fn != nil {
			fn(cfg)
		}
	})
}
