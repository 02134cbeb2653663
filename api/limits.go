package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-edge/weir/security"
)

// Limits bound what one client, and all of them together, can hold of the
// listener. Zero fields take the defaults below.
type Limits struct {
	// MaxConnsPerClient caps the open connections from one IP address, so
	// that one client (or one compromised PC) cannot take every slot.
	MaxConnsPerClient int
	// MaxConns caps the open connections in total; it also bounds the
	// per-client table.
	MaxConns int
	// MaxHeaderBytes caps a request's header block (net/http answers 431).
	MaxHeaderBytes int
	// MaxBodyBytes caps a request body; an endpoint may lower it for
	// itself. Larger bodies are refused with 413 before they are read.
	MaxBodyBytes int64
}

// The defaults: a handful of operators, scrapers and CLI calls need far
// fewer; an API request body is a write or an alarm command of a few
// hundred bytes.
const (
	DefaultMaxConnsPerClient = 32
	DefaultMaxConns          = 1024
	DefaultMaxHeaderBytes    = 32 << 10
	DefaultMaxBodyBytes      = 1 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxConnsPerClient <= 0 {
		l.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return l
}

// Why a request or connection was refused before any handler ran; the
// reason label of weir_api_requests_refused_total.
const (
	refusedHost        = "host"
	refusedOrigin      = "origin"
	refusedBody        = "body_size"
	refusedClientConns = "client_connections"
	refusedConns       = "connections"
)

var refusedReasons = []string{refusedHost, refusedOrigin, refusedBody, refusedClientConns, refusedConns}

// maxPeers bounds the set of remote addresses already seen; when it is
// full the oldest is forgotten (and reported again if it comes back).
const maxPeers = 4096

// eventsPerMinute caps the security events of one kind the listener
// reports; the rest are counted and the count goes with the next event,
// so a flood of refused connections cannot flood the SOC stream.
const eventsPerMinute = 30

// guardState is what the listener, the TLS layer and the request guard
// share: counters for the metrics, the event recorder and the limiters in
// front of it.
type guardState struct {
	log      *slog.Logger
	rec      security.Recorder
	refused  map[string]*atomic.Uint64 // fixed keys: refusedReasons
	open     atomic.Int64
	peersNew atomic.Uint64
	certRej  atomic.Uint64
	tls      *TLS // nil: plain HTTP
	limiters map[security.Kind]*eventLimiter

	// fresh holds the connections that have not yet sent a request
	// (bounded by the connection limit); silent counts those closed so.
	freshMu sync.Mutex
	fresh   map[net.Conn]struct{}
	silent  atomic.Uint64
}

// connState is the http.Server's ConnState hook. It counts connections
// closed before they sent a complete request header: the 5 s header
// timeout (a client that connects and says nothing — idle-from-the-start
// connections, slowloris), a failed TLS handshake, or the client hanging
// up. They are ordinary, so they are a metric, not an event each; without
// it they simply vanished from view.
func (g *guardState) connState(c net.Conn, s http.ConnState) {
	g.freshMu.Lock()
	defer g.freshMu.Unlock()
	switch s {
	case http.StateNew:
		if g.fresh == nil {
			g.fresh = map[net.Conn]struct{}{}
		}
		g.fresh[c] = struct{}{}
	case http.StateActive:
		delete(g.fresh, c)
	case http.StateClosed, http.StateHijacked:
		if _, ok := g.fresh[c]; ok {
			delete(g.fresh, c)
			g.silent.Add(1)
		}
	}
}

func newGuardState(log *slog.Logger, rec security.Recorder, t *TLS) *guardState {
	if rec == nil {
		rec = security.Discard
	}
	g := &guardState{log: log, rec: rec, tls: t, refused: map[string]*atomic.Uint64{}, limiters: map[security.Kind]*eventLimiter{}}
	for _, r := range refusedReasons {
		g.refused[r] = new(atomic.Uint64)
	}
	for _, k := range []security.Kind{security.RequestRefused, security.NewPeer, security.CertRejected, security.CertReloadFailed} {
		g.limiters[k] = &eventLimiter{max: eventsPerMinute, now: time.Now}
	}
	return g
}

// record reports ev unless its kind is over its rate, and says whether it
// did; suppressed events of the kind are counted into the next one's
// Detail.
func (g *guardState) record(ev security.Event) bool {
	ok, suppressed := g.limiters[ev.Kind].allow()
	if !ok {
		return false
	}
	if suppressed > 0 {
		ev.Detail += fmt.Sprintf(" (%d more of this kind not reported in the last minute)", suppressed)
	}
	ev.Time = time.Now()
	if ev.Component == "" {
		ev.Component = "api"
	}
	g.rec.Record(context.Background(), ev)
	return true
}

func (g *guardState) refuse(reason, remote, object, detail string) {
	g.refused[reason].Add(1)
	g.record(security.Event{Kind: security.RequestRefused, Severity: security.SeverityWarning, Remote: remote,
		Object: object, Outcome: "refused", Detail: detail})
}

// eventLimiter lets max events through per minute (a fixed window) and
// counts the rest.
type eventLimiter struct {
	mu         sync.Mutex
	max        int
	now        func() time.Time
	window     time.Time
	n          int
	suppressed uint64
}

func (l *eventLimiter) allow() (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.window) >= time.Minute {
		l.window, l.n = now, 0
	}
	if l.n >= l.max {
		l.suppressed++
		return false, 0
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Describe is empty, as the component collector's: the listener's metric
// set is fixed but built at scrape time.
func (g *guardState) Describe(chan<- *prometheus.Desc) {}

// Collect exports the listener's counters.
func (g *guardState) Collect(ch chan<- prometheus.Metric) {
	for _, r := range refusedReasons {
		counter(ch, "weir_api_requests_refused_total", prometheus.Labels{"reason": r}, float64(g.refused[r].Load()))
	}
	gauge(ch, "weir_api_connections_open", nil, float64(g.open.Load()))
	counter(ch, "weir_api_new_peers_total", nil, float64(g.peersNew.Load()))
	counter(ch, "weir_api_connections_closed_before_request_total", nil, float64(g.silent.Load()))
	counter(ch, "weir_api_tls_certificates_rejected_total", nil, float64(g.certRej.Load()))
	if g.tls != nil {
		counter(ch, "weir_api_tls_reload_failures_total", nil, float64(g.tls.ReloadFailures()))
	}
}

// connLimiter is a net.Listener that refuses (closes at once) a
// connection beyond the per-client or the total cap, and reports the
// first connection from an address it has not seen before. Its tables are
// bounded: the per-client counts by MaxConns (an entry leaves with its
// last connection), the seen addresses by maxPeers.
type connLimiter struct {
	net.Listener
	g                *guardState
	perClient, total int

	mu       sync.Mutex
	open     int
	byClient map[string]int
	seen     map[string]struct{}
	seenFIFO []string // ring of seen, oldest at seenNext
	seenNext int
}

func newConnLimiter(ln net.Listener, g *guardState, lim Limits) *connLimiter {
	return &connLimiter{Listener: ln, g: g, perClient: lim.MaxConnsPerClient, total: lim.MaxConns,
		byClient: map[string]int{}, seen: map[string]struct{}{}}
}

// Accept returns the next connection within the limits; refused ones are
// closed and counted here, never handed to the server.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		remote := c.RemoteAddr().String()
		ip := clientIP(c.RemoteAddr())
		reason, isNew := l.admit(ip)
		if isNew {
			l.g.peersNew.Add(1)
			l.g.record(security.Event{Kind: security.NewPeer, Severity: security.SeverityNotice, Remote: remote,
				Outcome: "ok", Detail: "first connection to the HTTP API from " + ip})
		}
		switch reason {
		case "":
			l.g.open.Add(1)
			return &limitedConn{Conn: c, l: l, ip: ip}, nil
		case refusedClientConns:
			c.Close()
			l.g.refuse(reason, remote, "", fmt.Sprintf("connection refused: %s already holds %d connections to the HTTP API (http.max_connections_per_client)", ip, l.perClient))
		default:
			c.Close()
			l.g.refuse(reason, remote, "", fmt.Sprintf("connection refused: the HTTP API already holds %d connections (http.max_connections)", l.total))
		}
	}
}

// admit counts a new connection from ip, or says why it is refused; isNew
// reports an address not seen before (refused or not).
func (l *connLimiter) admit(ip string) (reason string, isNew bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[ip]; !ok {
		isNew = true
		if len(l.seenFIFO) < maxPeers {
			l.seenFIFO = append(l.seenFIFO, ip)
		} else {
			delete(l.seen, l.seenFIFO[l.seenNext])
			l.seenFIFO[l.seenNext] = ip
			l.seenNext = (l.seenNext + 1) % maxPeers
		}
		l.seen[ip] = struct{}{}
	}
	switch {
	case l.byClient[ip] >= l.perClient:
		return refusedClientConns, isNew
	case l.open >= l.total:
		return refusedConns, isNew
	}
	l.byClient[ip]++
	l.open++
	return "", isNew
}

func (l *connLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.byClient[ip] - 1; n > 0 {
		l.byClient[ip] = n
	} else {
		delete(l.byClient, ip)
	}
	l.g.open.Add(-1)
}

// limitedConn gives its slot back exactly once, however often it is
// closed.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// clientIP is the address a limit applies to: the IP without the port
// (every connection has its own port).
func clientIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
