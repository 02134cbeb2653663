package uitest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/ui"
	"github.com/weir-edge/weir/writegate"
)

// Password is the password of every local user of a Server: one user per
// role, named after it ("viewer", "operator", "engineer", "admin").
const Password = "test-password-1"

// ServerOptions adapt a Server to a test; every field is optional.
type ServerOptions struct {
	// Status is the engine status of the overview; nil: Status().
	Status ui.StatusSource
	// Gate receives POST /api/v1/write; nil: a gate that accepts every
	// write and remembers it (Server.Writes).
	Gate api.WriteGate
	// Audit answers GET /api/v1/audit; nil: none mounted.
	Audit api.AuditTail
	// UI adds the dependencies of further pages to the UI's options.
	UI func(*ui.Options)
	// Extra mounts further API handlers (the values, write and UI routes
	// are mounted already).
	Extra func(mux *http.ServeMux)
	// Events receives the security events; nil: discarded.
	Events security.Recorder
}

// Server is the API with authentication, the latest-value store and the
// web UI, listening on 127.0.0.1:0 until the test ends.
type Server struct {
	URL string
	// Handler is the whole handler tree (guard, authentication, API, UI),
	// for calling it without the network.
	Handler http.Handler
	Auth    *auth.Authenticator
	Values  *latest.Store
	// Tokens holds an API token per role, of user "<role>-token".
	Tokens map[security.Role]string
	gate   *acceptGate
	srv    *httptest.Server
}

// Stop stops the server as a stopped gateway does: open streams are cut
// and new connections refused. It is safe to call more than once.
func (s *Server) Stop() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

var hash = sync.OnceValue(func() string {
	h, err := auth.HashPassword(Password)
	if err != nil {
		panic(err)
	}
	return h
})

// StartServer starts a Server for t.
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	var users []auth.User
	for _, r := range security.Roles {
		users = append(users, auth.User{Name: string(r), Role: r, PasswordHash: hash()})
	}
	a, err := auth.New(auth.Config{Users: users, RateLimit: "100000/min"}, auth.Options{DataDir: t.TempDir(), Events: opts.Events})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Auth: a, Values: latest.New(0), Tokens: map[security.Role]string{}}
	for _, r := range security.Roles {
		tok, _, err := a.Tokens().Create(string(r)+"-token", r, time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		s.Tokens[r] = tok
	}
	if opts.Status == nil {
		opts.Status = Status()
	}
	gate := opts.Gate
	if gate == nil {
		s.gate = &acceptGate{}
		gate = s.gate
	}
	uopts := ui.Options{Sessions: a, Status: opts.Status, Values: s.Values, NodeID: "test-gw", Version: "test"}
	if opts.UI != nil {
		opts.UI(&uopts)
	}
	u, err := ui.New(uopts)
	if err != nil {
		t.Fatal(err)
	}
	values := &api.Values{Store: s.Values, Gate: gate, Audit: opts.Audit}
	// AllowedHosts non-nil: the guard checks Host and Origin as a served
	// gateway does (loopback names and addresses).
	h := api.New(api.Options{Status: opts.Status, Auth: a, NodeID: "test-gw", AllowedHosts: []string{}, Extra: func(mux *http.ServeMux) {
		values.Mount(mux)
		u.Mount(mux)
		if opts.Extra != nil {
			opts.Extra(mux)
		}
	}}).Handler()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		// Live streams (an EventSource of a page still open) would hold
		// Close forever: cut them first.
		srv.CloseClientConnections()
		srv.Close()
	})
	s.URL = srv.URL
	s.Handler = h
	s.srv = srv
	return s
}

// Writes returns the writes the default gate accepted.
func (s *Server) Writes() []writegate.Request {
	if s.gate == nil {
		return nil
	}
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	return append([]writegate.Request(nil), s.gate.reqs...)
}

type acceptGate struct {
	mu   sync.Mutex
	reqs []writegate.Request
}

func (g *acceptGate) Write(_ context.Context, req writegate.Request) (writegate.Result, error) {
	g.mu.Lock()
	g.reqs = append(g.reqs, req)
	g.mu.Unlock()
	return audit.Entry{Time: time.Now().UTC(), Caller: req.Caller, Path: req.Path, New: req.Value}, nil
}

// FixedStatus is an engine status that does not change.
type FixedStatus struct{ St engine.Status }

// Status implements ui.StatusSource.
func (f FixedStatus) Status() engine.Status { return f.St }

// Status is a small plausible engine status: one source running, one sink
// retrying with a buffer and an error.
func Status() FixedStatus {
	return FixedStatus{engine.Status{Ready: true, Uptime: 3723, Emitted: 123456, Components: []engine.ComponentStatus{
		{Kind: "source", Status: pipeline.Status{Name: "press-plc", State: pipeline.StateRunning,
			Counters: map[string]uint64{"samples": 120000}}, Up: true},
		{Kind: "source", Status: pipeline.Status{Name: "oven-opcua", State: pipeline.StateRunning,
			Counters: map[string]uint64{"samples": 3456}}, Up: true},
		{Kind: "sink", Status: pipeline.Status{Name: "uns-mqtt", State: pipeline.StateRunning,
			Counters: map[string]uint64{"samples_written": 123000}}, Up: true,
			Buffer:  &buffer.Stats{Depth: 12, Capacity: 10000, Pushed: 123012, Acked: 123000, OldestEdgeTime: time.Now().Add(-80 * time.Millisecond).UnixNano()},
			Latency: &engine.LatencyStats{Count: 1000, P50ms: 3, P99ms: 12}},
		{Kind: "sink", Status: pipeline.Status{Name: "historian-pg", State: pipeline.StateRetrying,
			LastError: "dial tcp 10.0.0.5:5432: connection refused", LastErrorAt: time.Now().Add(-42 * time.Second),
			Counters: map[string]uint64{"samples_written": 99000, "write_errors": 7}},
			Buffer: &buffer.Stats{Depth: 7312, Capacity: 10000, Pushed: 106312, Acked: 99000, OldestEdgeTime: time.Now().Add(-3 * time.Minute).UnixNano()}},
	}}}
}
