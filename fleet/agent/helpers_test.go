package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/gateway"
)

// hangBound bounds every wait: it fails a hang, never a slow machine.
const hangBound = 2 * time.Minute

// testHub is what the tests stand in for branch hub's: an embedded
// nats-server with JetStream (stream WEIR_REPORTS) and the users and
// permissions of contracts15.md (static users instead of JWTs), a signer,
// and a responder for weir.hub.desired.<site> answering with the newest
// bundle set for the site.
type testHub struct {
	t       *testing.T
	dir     string
	port    int
	srv     *server.Server
	nc      *nats.Conn
	signer  *bundle.Signer
	mu      sync.Mutex
	desired map[string][]byte
	reports chan Report
	// silent: this many desired-state requests go unanswered, as when
	// the hub cannot read NATS.
	silent int
}

// sitePerms are a site's permissions exactly as the contract gives them.
func sitePerms(site string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"weir.report." + site, "weir.hub.desired." + site, "weir.hub.trust"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"weir.desired." + site, "weir.trust", "_INBOX_" + site + ".>"}},
	}
}

func startHub(t *testing.T) *testHub {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &testHub{t: t, dir: t.TempDir(), port: -1, signer: bundle.NewSigner(priv), desired: map[string][]byte{},
		reports: make(chan Report, 10000)}
	h.start()
	t.Cleanup(h.stop)
	return h
}

// start runs the server (again, on the same port and store after stop)
// and connects the hub's side: the stream, the desired responder, a
// subscription to the reports.
func (h *testHub) start() {
	t := h.t
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: h.port, JetStream: true, StoreDir: h.dir, NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "hub", Password: "hub"},
			{Username: "s1", Password: "s1", Permissions: sitePerms("s1")},
			{Username: "s2", Password: "s2", Permissions: sitePerms("s2")},
		}}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(hangBound) {
		t.Fatal("embedded nats-server did not start")
	}
	h.srv = srv
	h.port = srv.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(h.url(), nats.UserInfo("hub", "hub"))
	if err != nil {
		t.Fatal(err)
	}
	h.nc = nc
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "WEIR_REPORTS", Subjects: []string{"weir.report.>"}, MaxAge: 7 * 24 * time.Hour,
		MaxMsgsPerSubject: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.QueueSubscribe("weir.hub.desired.*", "weir-hub", func(m *nats.Msg) {
		site := strings.TrimPrefix(m.Subject, "weir.hub.desired.")
		h.mu.Lock()
		data := h.desired[site]
		silent := h.silent > 0
		if silent {
			h.silent--
		}
		h.mu.Unlock()
		if silent {
			return
		}
		reply := nats.NewMsg(m.Reply)
		if data == nil {
			reply.Header.Set("Weir-Status", "none")
		}
		reply.Data = data
		m.RespondMsg(reply)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("weir.hub.trust", func(m *nats.Msg) { m.Respond([]byte(`{"rotations":[]}`)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("weir.report.*", func(m *nats.Msg) {
		var r Report
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Errorf("report does not decode: %v: %s", err, m.Data)
			return
		}
		select {
		case h.reports <- r:
		default:
			t.Errorf("test hub: report queue full")
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (h *testHub) stop() {
	if h.nc != nil {
		h.nc.Close()
		h.nc = nil
	}
	if h.srv != nil {
		h.srv.Shutdown()
		h.srv.WaitForShutdown()
		h.srv = nil
	}
}

func (h *testHub) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", h.port) }

// issue signs config as version of site.
func (h *testHub) issue(site string, version uint64, config string) *bundle.Bundle {
	h.t.Helper()
	b, err := h.signer.Issue(&bundle.Rendered{Site: site, Config: []byte(config)}, version, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// setDesired makes b the bundle the hub answers with; publish also sends
// it on weir.desired.<site> (what the KV's RePublish does).
func (h *testHub) setDesired(b *bundle.Bundle, publish bool) {
	h.t.Helper()
	h.mu.Lock()
	h.desired[b.Site] = b.Encode()
	h.mu.Unlock()
	if publish {
		h.send(b.Site, b.Encode())
	}
}

func (h *testHub) send(site string, data []byte) {
	h.t.Helper()
	if err := h.nc.Publish("weir.desired."+site, data); err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		h.t.Fatal(err)
	}
}

// waitReport waits for a report of site that satisfies ok.
func (h *testHub) waitReport(site, what string, ok func(Report) bool) Report {
	h.t.Helper()
	deadline := time.NewTimer(hangBound)
	defer deadline.Stop()
	var last Report
	for {
		select {
		case r := <-h.reports:
			if r.Site != site {
				continue
			}
			last = r
			if ok(r) {
				return r
			}
		case <-deadline.C:
			h.t.Fatalf("no report of %s with %s within %s; last: %+v (rollback %+v, refused %+v)", site, what, hangBound, last, last.Rollback, last.Refused)
		}
	}
}

// fakeTarget is a gateway stubbed at the seam: it keeps the text applied
// and reports a sink down while the text says "sink: down", refuses a
// text saying "invalid: yes".
type fakeTarget struct {
	mu      sync.Mutex
	text    []byte
	actors  []string
	applied [][]byte
}

func (f *fakeTarget) Apply(_ context.Context, data []byte, actor string) error {
	if strings.Contains(string(data), "invalid: yes") {
		return fmt.Errorf("%w: weir.yaml:1: invalid: unknown key", gateway.ErrInvalid)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.text = append([]byte(nil), data...)
	f.actors = append(f.actors, actor)
	f.applied = append(f.applied, f.text)
	return nil
}

func (f *fakeTarget) Running() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.text
}

func (f *fakeTarget) State() gateway.FleetState {
	f.mu.Lock()
	defer f.mu.Unlock()
	sum := sha256.Sum256(f.text)
	up := !strings.Contains(string(f.text), "sink: down")
	st := gateway.FleetState{ConfigSHA256: hex.EncodeToString(sum[:])}
	st.Status.Ready = up
	st.Status.Components = []engine.ComponentStatus{{Kind: "source", Up: true}, {Kind: "sink", Up: up}}
	st.Status.Components[0].Name, st.Status.Components[1].Name = "plc", "uns"
	if !up {
		st.Status.Components[1].LastError = "dial tcp 127.0.0.1:1: connection refused"
	}
	return st
}

func (f *fakeTarget) history() (actors []string, texts []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.applied {
		texts = append(texts, string(f.applied[i]))
	}
	return append([]string(nil), f.actors...), texts
}

// site is one agent under test.
type site struct {
	agent  *Agent
	target *fakeTarget
	store  *bundle.Store
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startSite runs an agent for id against h with a fake target that runs
// "local" first; storeDir "" makes a new store.
func startSite(t *testing.T, h *testHub, id, storeDir string, tune func(*Options)) *site {
	t.Helper()
	if storeDir == "" {
		storeDir = t.TempDir()
	}
	trust, err := bundle.NewTrustStore(h.signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	store, err := bundle.OpenStore(storeDir, id, trust, bundle.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tgt := &fakeTarget{text: []byte("local: file\n")}
	opts := Options{Site: id, URL: h.url(), NATS: []nats.Option{nats.UserInfo(id, id)}, Store: store, Target: tgt,
		ReportInterval: time.Second, Dwell: 50 * time.Millisecond, RequestTimeout: 2 * time.Second}
	if tune != nil {
		tune(&opts)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &site{agent: a, target: tgt, store: store, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Run(ctx) }()
	t.Cleanup(s.stop)
	return s
}

// stop cancels the agent and waits for Run to return (once).
func (s *site) stop() {
	s.once.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				panic(err)
			}
		case <-time.After(hangBound):
			panic("agent did not stop within " + hangBound.String())
		}
	})
}

// storedReports reads every report of site that stream WEIR_REPORTS holds,
// in stream order.
func (h *testHub) storedReports(site string) []Report {
	h.t.Helper()
	js, err := h.nc.JetStream()
	if err != nil {
		h.t.Fatal(err)
	}
	sub, err := js.SubscribeSync("weir.report."+site, nats.OrderedConsumer(), nats.DeliverAll())
	if err != nil {
		h.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	var out []Report
	for {
		m, err := sub.NextMsg(hangBound)
		if err != nil {
			h.t.Fatalf("reading the stored reports: %v", err)
		}
		var r Report
		if err := json.Unmarshal(m.Data, &r); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, r)
		if meta, err := m.Metadata(); err != nil || meta.NumPending == 0 {
			return out
		}
	}
}

func jsonInto(data []byte, v any) error { return json.Unmarshal(data, v) }
