package opcua

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
)

// The node-opcua peer: a server nobody here wrote (testdata/nodeopcua,
// installed by its install.sh).
const peerDir = "testdata/nodeopcua"

func requirePeer(t *testing.T) {
	t.Helper()
	msg := ""
	if _, err := exec.LookPath("node"); err != nil {
		msg = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(peerDir, "node_modules", "node-opcua")); err != nil {
		msg = "node-opcua is not installed (run " + peerDir + "/install.sh)"
	}
	if msg == "" {
		return
	}
	if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
		t.Fatal("node-opcua peer unavailable: " + msg)
	}
	t.Skip("node-opcua peer unavailable: " + msg)
}

// peer is one node-opcua server process.
type peer struct {
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	exited chan struct{}
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// startPeer starts the server on port with its PKI in pkiDir and waits
// for its "ready" line.
func startPeer(t *testing.T, port, pkiDir string) *peer {
	t.Helper()
	cmd := exec.Command("node", "server.js", "--port", port, "--pki", pkiDir)
	cmd.Dir = peerDir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{cmd: cmd, stdin: stdin, exited: make(chan struct{}), stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				close(ready)
			}
		}
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("node-opcua server exited; stderr: %s", p.stderr.String())
	case <-time.After(2 * time.Minute):
		p.kill()
		t.Fatalf("node-opcua server not ready after 2 min; stderr: %s", p.stderr.String())
	}
	return p
}

// kill ends the server abruptly, as a crash or power loss would.
func (p *peer) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// stop asks the server to shut down (it exits when stdin closes).
func (p *peer) stop() {
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

var peerWant = map[string]model.Value{
	"double":  model.Float(3.5),
	"int32":   model.Int(-42),
	"uint16":  model.Uint(65000),
	"bool":    model.Bool(true),
	"string":  model.String("node-opcua"),
	"doubles": model.Array([]model.Value{model.Float(1.5), model.Float(2.5)}),
	"int32s":  model.Array([]model.Value{model.Int(1), model.Int(-2), model.Int(3)}),
}

// TestNodeOPCUAInterop subscribes to every type the peer serves, polls,
// checks the server-side percent deadband, then kills the server and
// starts it again on the same port: every item resumes, exactly once.
func TestNodeOPCUAInterop(t *testing.T) {
	requirePeer(t)
	port, pkiDir := freePort(t), t.TempDir()
	p1 := startPeer(t, port, pkiDir)

	cfg := insecure("opc.tcp://127.0.0.1:" + port)
	cfg.ReconnectMax = 500 * time.Millisecond
	// At most 4 values per publish response: node-opcua sends the initial
	// values of every item in several responses (MoreNotifications).
	sub := SubscriptionConfig{PublishingInterval: 100 * time.Millisecond, MaxNotificationsPerPublish: 4}
	for name := range peerWant {
		sub.Items = append(sub.Items, ItemConfig{Name: "peer/" + name, NodeID: "nsu=urn:weir:peer;s=peer." + name})
	}
	sub.Items = append(sub.Items,
		ItemConfig{Name: "peer/counter", NodeID: "nsu=urn:weir:peer;s=peer.counter", SamplingInterval: 50 * time.Millisecond},
		ItemConfig{Name: "peer/analog", NodeID: "nsu=urn:weir:peer;s=peer.analog", Deadband: &Deadband{Type: "percent", Value: 5}},
		ItemConfig{Name: "peer/missing", NodeID: "nsu=urn:weir:peer;s=peer.nope"})
	cfg.Subscriptions = []SubscriptionConfig{sub}
	cfg.Poll = []PollConfig{{Interval: 200 * time.Millisecond, Items: []PollItem{{Name: "polled/int32", NodeID: "nsu=urn:weir:peer;s=peer.int32"}}}}
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	rec.waitFor(t, 30*time.Second, "every item, five analog values", func() bool {
		return rec.paths() == len(peerWant)+4 && rec.count("plant/peer/analog") >= 5 && rec.count("plant/polled/int32") >= 2
	})
	// One batch per publish response (subscriptions) or Read (the poll
	// group's one item): none above the limit.
	if n := rec.largestBatch(); n > 4 {
		t.Errorf("a batch of %d samples: the server was not asked for at most 4 per publish", n)
	}
	for name, w := range peerWant {
		if s := rec.last(t, "plant/peer/"+name); !s.Value.Equal(w) || !s.Quality.IsGood() {
			t.Errorf("%s = %#v %v, want %#v", name, s.Value, s.Quality, w)
		}
	}
	if s := rec.last(t, "plant/peer/missing"); s.Quality.Code != model.Bad || s.Quality.Reason != "BadNodeIDUnknown" {
		t.Errorf("missing node: %v", s.Quality)
	}
	if s := rec.last(t, "plant/polled/int32"); !s.Value.Equal(model.Int(-42)) {
		t.Errorf("polled int32 = %v", s.Value)
	}
	// 5 % of the EURange 0..200: consecutive analog values differ by > 10.
	a := rec.samples("plant/peer/analog")
	for i := 1; i < len(a); i++ {
		if d := math.Abs(a[i].Value.AsFloat() - a[i-1].Value.AsFloat()); d <= 10 {
			t.Fatalf("percent deadband passed a change of %v: %v", d, a)
		}
	}

	// Restart: kill the server and start it again on the same port.
	before := map[string]int{}
	var lastBefore = map[string]int64{}
	for _, it := range sub.Items {
		path := "plant/" + it.Name
		before[path] = rec.count(path)
		lastBefore[path] = rec.last(t, path).SourceTime
	}
	p1.kill()
	killedAt := time.Now().UnixNano()
	startPeer(t, port, pkiDir)
	rec.waitFor(t, 60*time.Second, "every subscribed item after the restart", func() bool {
		for path, n := range before {
			if path != "plant/peer/missing" && rec.count(path) <= n {
				return false
			}
		}
		return rec.count("plant/peer/counter") >= before["plant/peer/counter"]+3
	})
	for name := range peerWant {
		path := "plant/peer/" + name
		s := rec.samples(path)
		after := s[before[path]:]
		if len(after) != 1 {
			t.Errorf("%s: %d samples after the restart, want exactly 1: %v", name, len(after), after)
		}
		if after[0].SourceTime <= lastBefore[path] || after[0].SourceTime < killedAt || !after[0].Value.Equal(peerWant[name]) {
			t.Errorf("%s after restart: %v (source time %d, killed at %d)", name, after[0], after[0].SourceTime, killedAt)
		}
	}
	c := rec.samples("plant/peer/counter")
	for i := 1; i < len(c); i++ {
		if c[i].SourceTime == c[i-1].SourceTime && c[i].Value.Equal(c[i-1].Value) {
			t.Fatalf("duplicate counter sample %v", c[i])
		}
	}
	if n := src.Status().Counters["sessions"]; n < 2 {
		t.Errorf("sessions = %d", n)
	}
	if n := src.Status().Counters["items_created"]; n != uint64(2*(len(sub.Items)-1)) {
		t.Errorf("items_created = %d, want %d (each live item once per session)", n, 2*(len(sub.Items)-1))
	}
}

// TestNodeOPCUASecureUsername connects with Basic256Sha256 SignAndEncrypt
// and a user name; the test trusts the server's certificate up front.
func TestNodeOPCUASecureUsername(t *testing.T) {
	requirePeer(t)
	port, peerPKI, pkiDir := freePort(t), t.TempDir(), t.TempDir()
	startPeer(t, port, peerPKI)
	endpoint := "opc.tcp://127.0.0.1:" + port

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := selectEndpoint(eps, ua.SecurityPolicyURIBasic256Sha256, ua.MessageSecurityModeSignAndEncrypt, ua.UserTokenTypeUserName)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(pkiDir, "trusted"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkiDir, "trusted", "peer.der"), ep.ServerCertificate, 0o644); err != nil {
		t.Fatal(err)
	}

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Endpoint: endpoint, SecurityPolicy: "Basic256Sha256", SecurityMode: "SignAndEncrypt", PKIDir: pkiDir, Namespace: "plant",
		Auth:          Auth{Type: "username", Username: "weir", Password: conf.Secret{File: pwFile}},
		Subscriptions: []SubscriptionConfig{{PublishingInterval: 100 * time.Millisecond, Items: []ItemConfig{{Name: "counter", NodeID: "nsu=urn:weir:peer;s=peer.counter"}}}},
		Poll:          []PollConfig{{Interval: 100 * time.Millisecond, Items: []PollItem{{Name: "string", NodeID: "nsu=urn:weir:peer;s=peer.string"}}}}}
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	rec.waitFor(t, 30*time.Second, "data over the secure channel", func() bool {
		return rec.count("plant/counter") >= 3 && rec.count("plant/string") >= 1
	})
	if s := rec.last(t, "plant/string"); !s.Value.Equal(model.String("node-opcua")) {
		t.Errorf("string = %v", s.Value)
	}
	if entries, _ := os.ReadDir(filepath.Join(pkiDir, "rejected")); len(entries) != 0 {
		t.Errorf("rejected/ has %v", entries)
	}

	// A wrong password is refused by the server and reported.
	bad := cfg
	bad.Auth.Password = conf.Secret{Env: "WEIR_TEST_BAD_PW"}
	t.Setenv("WEIR_TEST_BAD_PW", "wrong")
	bsrc := mustNew(t, bad)
	brec := newRecorder()
	stop := startSource(t, bsrc, brec)
	eventuallyStatus(t, bsrc, "a refused login", func(last string) bool { return strings.Contains(last, "connect") })
	stop()
	if brec.paths() != 0 {
		t.Error("data arrived with a wrong password")
	}
}

// eventuallyStatus waits until the source's last error satisfies cond.
func eventuallyStatus(t *testing.T, src *Source, what string, cond func(lastError string) bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for !cond(src.Status().LastError) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; last error %q", what, src.Status().LastError)
		}
	}
}
