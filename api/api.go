package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/security"
)

// StatusSource is what the API reads; *engine.Engine implements it.
type StatusSource interface {
	Status() engine.Status
}

// Middleware wraps every handler; the seam for authentication.
type Middleware func(http.Handler) http.Handler

// Options configure a Server.
type Options struct {
	Status     StatusSource
	NodeID     string
	Version    string
	Auth       Authenticator // when set, guards every route but /healthz and /readyz (RequireAuth), inside Middleware
	Middleware Middleware
	Logger     *slog.Logger
	// Extra mounts further handlers on the mux (behind Middleware), such
	// as the values, write and audit endpoints (Values.Mount).
	Extra func(mux *http.ServeMux)

	// TLS, when set, makes Serve answer HTTPS only (see LoadTLS).
	TLS *TLS
	// AllowedHosts are the names (and "*.domain" patterns) the API answers
	// to besides LoopbackHosts; a request for another name is refused
	// (guard). Nil: Serve allows the loopback names and its listen
	// address; a Handler used on its own checks no Host.
	AllowedHosts []string
	// Limits bound connections, headers and bodies; zero fields take the
	// defaults.
	Limits Limits
	// Events receives refused requests, certificate rejections and new
	// peers (rate-limited); nil: security.Discard.
	Events security.Recorder
	// SecurityStats, when set, adds the weir_security_* metrics of the
	// security event stream (secevents.Stream).
	SecurityStats SecurityEventSource
	// AuditStats, when set, adds the weir_audit_* metrics of the trail.
	AuditStats AuditSource
	// Collectors are further metrics, such as History's query durations.
	Collectors []prometheus.Collector
}

// Server is the HTTP listener. Construct with New, then Serve.
type Server struct {
	opts    Options
	handler http.Handler
	mux     *http.ServeMux // the routes, for TestOpenAPIMatchesRoutes
	log     *slog.Logger
	guard   *guard
}

// New builds the handler tree; nothing listens yet.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Limits = opts.Limits.withDefaults()
	gs := newGuardState(opts.Logger, opts.Events, opts.TLS)
	reg := prometheus.NewRegistry()
	reg.MustRegister(gs,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(opts.Status, opts.NodeID, opts.Version),
	)
	if opts.SecurityStats != nil {
		reg.MustRegister(securityCollector{opts.SecurityStats})
	}
	if opts.AuditStats != nil {
		reg.MustRegister(auditCollector{opts.AuditStats})
	}
	reg.MustRegister(opts.Collectors...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogAdapter{opts.Logger}}))
	// Liveness: the process answers. It says nothing about the plant or
	// the destinations, so a supervisor restarts Weir only when it hangs.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	// Readiness: data can flow end to end (see engine.Status.Ready); the
	// body names what is down.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		st := opts.Status.Status()
		if !st.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready")
			for _, why := range st.NotReady {
				fmt.Fprintln(w, why)
			}
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Node    string `json:"node"`
			Version string `json:"version"`
			engine.Status
		}{opts.NodeID, opts.Version, opts.Status.Status()})
	})
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI) // OpenAPIPath; a literal so TestOpenAPIMatchesRoutes sees it
	if opts.Extra != nil {
		opts.Extra(mux)
	}
	var h http.Handler = mux
	if opts.Auth != nil {
		h = RequireAuth(opts.Auth, h)
	}
	if opts.Middleware != nil {
		h = opts.Middleware(h)
	}
	// Outermost: Host/Origin, body size and security headers (guard.go),
	// before authentication sees the request.
	gd := &guard{next: h, limit: opts.Limits.MaxBodyBytes, g: gs}
	if opts.AllowedHosts != nil {
		gd.hosts.Store(newHostSet(opts.AllowedHosts))
	}
	return &Server{opts: opts, handler: gd, mux: mux, log: opts.Logger, guard: gd}
}

// Handler returns the handler tree, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on ln until ctx is done, then shuts down gracefully:
// HTTPS when Options.TLS is set, within Options.Limits (per-client and
// total connections: limits.go).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.guard.hosts.Load() == nil {
		s.guard.hosts.CompareAndSwap(nil, newHostSet(listenHosts(ln.Addr())))
	}
	gs := s.guard.g
	ln = newConnLimiter(ln, gs, s.opts.Limits)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ConnState:         gs.connState,
		MaxHeaderBytes:    s.opts.Limits.MaxHeaderBytes,
		ErrorLog:          log.New(handshakeLog{g: gs, log: s.log}, "", 0),
	}
	// Streams (GET /api/v1/stream) never go idle: tell them to end when
	// the shutdown starts, through every request's context.
	closing := make(chan struct{})
	srv.BaseContext = func(net.Listener) context.Context { return withShutdownSignal(context.Background(), closing) }
	srv.RegisterOnShutdown(func() { close(closing) })
	if s.opts.TLS != nil {
		srv.TLSConfig = s.opts.TLS.Config()
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		// A browser holds connections that never become idle in time (a
		// socket it opened ahead and has sent nothing on counts as idle
		// only after 5 s): cut what is left rather than fail the stop.
		s.log.Info("api: connections still open at shutdown were closed")
		err = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.log.Warn("metrics", "err", fmt.Sprint(v...)) }

// listenHosts are the hosts a listener answers to when none are
// configured: its own address (the loopback names are always allowed).
func listenHosts(a net.Addr) []string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP != nil && !ta.IP.IsUnspecified() {
		return []string{ta.IP.String()}
	}
	return []string{}
}
