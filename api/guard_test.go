package api

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/security"
)

// events is a Recorder that keeps what it is given, for assertions, and
// signals each event on a channel for tests that wait for one.
type events struct {
	mu  sync.Mutex
	evs []security.Event
	ch  chan security.Event
}

func newEvents() *events { return &events{ch: make(chan security.Event, 1024)} }

func (e *events) Record(_ context.Context, ev security.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	select {
	case e.ch <- ev:
	default:
	}
}

func (e *events) kinds() map[security.Kind]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[security.Kind]int{}
	for _, ev := range e.evs {
		m[ev.Kind]++
	}
	return m
}

// waitFor returns the next event of kind k; the bound only stops a hang.
func (e *events) waitFor(t *testing.T, k security.Kind) security.Event {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case ev := <-e.ch:
			if ev.Kind == k {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", k)
		}
	}
}

// A browser tricked by DNS rebinding sends the attacker's name in Host; a
// page elsewhere sends its own Origin. Both are refused before any handler
// (the authenticator included) runs, and reported.
func TestHostOriginGuard(t *testing.T) {
	tests := []struct {
		name, host, origin string
		want               int
	}{
		{"loopback ip", "127.0.0.1:8080", "", 200},
		{"localhost", "localhost:8080", "", 200},
		{"v6 loopback", "[::1]:8080", "", 200},
		{"configured name", "weir.plant.local", "", 200},
		{"configured name, case and dot", "WEIR.Plant.Local.:8443", "", 200},
		{"wildcard", "gw1.edge.example:8443", "", 200},
		{"wildcard is not the parent", "edge.example", "", 421},
		{"ip literal cannot be rebound", "10.1.2.3:8080", "", 200},
		{"rebinding", "attacker.example", "", 421},
		{"rebinding with port", "attacker.example:8080", "", 421},
		{"suffix trick", "weir.plant.local.attacker.example", "", 421},
		{"junk host", "a b", "", 421},
		{"unbracketed v6", "::1:8080", "", 421},
		{"same-origin browser", "127.0.0.1:8080", "http://127.0.0.1:8080", 200},
		{"origin allowed name", "10.1.2.3:8443", "https://weir.plant.local:8443", 200},
		{"origin is own ip", "10.1.2.3:8443", "https://10.1.2.3:8443", 200},
		{"cross-site origin", "127.0.0.1:8080", "http://attacker.example", 403},
		{"cross-site origin ip", "10.1.2.3:8080", "http://6.6.6.6", 403},
		{"null origin", "127.0.0.1:8080", "null", 403},
		{"origin not a url", "127.0.0.1:8080", "attacker", 403},
		{"origin with path", "127.0.0.1:8080", "http://127.0.0.1:8080/x", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := newEvents()
			h := New(Options{Status: &fakeStatus{}, AllowedHosts: []string{"weir.plant.local", "*.edge.example"}, Events: ev}).Handler()
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			req.Host = tt.host
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("Host %q Origin %q = %d %s, want %d", tt.host, tt.origin, rec.Code, rec.Body, tt.want)
			}
			refused := ev.kinds()[security.RequestRefused]
			if (tt.want != 200) != (refused == 1) {
				t.Fatalf("%d RequestRefused events for a %d", refused, tt.want)
			}
		})
	}
}

// Serve without AllowedHosts answers to the loopback names and its own
// address only — the protection does not depend on configuration.
func TestServeChecksHostByDefault(t *testing.T) {
	base, _ := serve(t, Options{Status: &fakeStatus{}})
	for host, want := range map[string]int{"": 200, "attacker.example": 421, "localhost": 200} {
		req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q = %d, want %d", host, resp.StatusCode, want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := New(Options{Status: &fakeStatus{}, Extra: func(mux *http.ServeMux) {
		mux.HandleFunc("GET /api/v1/thing", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "{}") })
	}}).Handler()
	for _, path := range []string{"/healthz", "/readyz", "/status", "/metrics", "/api/v1/thing", "/nope"} {
		for _, overTLS := range []bool{false, true} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			if overTLS {
				req.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			hd := rec.Header()
			for k, want := range map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
				"Referrer-Policy":         "no-referrer",
			} {
				if got := hd.Get(k); got != want {
					t.Errorf("%s: %s = %q, want %q", path, k, got, want)
				}
			}
			if hsts := hd.Get("Strict-Transport-Security"); (hsts != "") != overTLS {
				t.Errorf("%s tls=%v: Strict-Transport-Security = %q", path, overTLS, hsts)
			}
			api := strings.HasPrefix(path, "/api/") || path == "/status"
			if api && hd.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: Cache-Control = %q, want no-store", path, hd.Get("Cache-Control"))
			}
		}
	}
}

// A body over the limit is refused before it is read when its length is
// declared, and cut off at the limit when it is streamed.
func TestBodyLimit(t *testing.T) {
	ev := newEvents()
	var readErr error
	h := New(Options{Status: &fakeStatus{}, Events: ev, Limits: Limits{MaxBodyBytes: 1000}, Extra: func(mux *http.ServeMux) {
		mux.HandleFunc("POST /api/v1/write", func(w http.ResponseWriter, r *http.Request) {
			_, readErr = io.ReadAll(r.Body)
			if readErr != nil {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
			io.WriteString(w, "ok")
		})
	}}).Handler()
	tests := []struct {
		name     string
		size     int
		declared bool
		want     int
	}{
		{"small", 999, true, 200},
		{"at limit", 1000, true, 200},
		{"declared over", 1001, true, 413},
		{"streamed over", 5000, false, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.NewReader(strings.Repeat("x", tt.size))
			req := httptest.NewRequest(http.MethodPost, "/api/v1/write", io.NopCloser(body))
			req.ContentLength = -1
			if tt.declared {
				req.ContentLength = int64(tt.size)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("%d bytes = %d, want %d", tt.size, rec.Code, tt.want)
			}
		})
	}
	if n := ev.kinds()[security.RequestRefused]; n != 1 {
		t.Errorf("%d RequestRefused events, want 1 (the declared one)", n)
	}
	_, body := get(t, h, "/metrics")
	if !strings.Contains(body, `weir_api_requests_refused_total{reason="body_size"} 1`) {
		t.Errorf("metrics lack the refused body:\n%s", grepLines(body, "weir_api_"))
	}
}

// A header block over MaxHeaderBytes is refused by the server (431)
// without reaching a handler.
func TestHeaderLimit(t *testing.T) {
	base, _ := serve(t, Options{Status: &fakeStatus{}, Limits: Limits{MaxHeaderBytes: 1024}})
	for size, want := range map[int]int{500: 200, 20 << 10: 431} {
		req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
		req.Header.Set("X-Big", strings.Repeat("y", size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%d-byte header = %d, want %d", size, resp.StatusCode, want)
		}
	}
}

// serve runs a Server on 127.0.0.1:0 until the test ends and returns its
// base URL.
func serve(t *testing.T, opts Options) (string, *Server) {
	t.Helper()
	return serveTB(t, opts)
}

func serveB(b *testing.B, opts Options) string {
	b.Helper()
	base, _ := serveTB(b, opts)
	return base
}

func serveTB(t testing.TB, opts Options) (string, *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String(), srv
}

func grepLines(s, sub string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

func TestParseHostHeader(t *testing.T) {
	tests := []struct {
		in, host string
		ip, ok   bool
	}{
		{"Example.COM", "example.com", false, true},
		{"example.com.:443", "example.com", false, true},
		{"127.0.0.1:8080", "127.0.0.1", true, true},
		{"[::1]:8080", "::1", true, true},
		{"[::1]", "::1", true, true},
		{"[fe80::1%25eth0]:80", "", false, false},
		{"[1.2.3.4]", "", false, false},
		{"[::1]x", "", false, false},
		{"[::1]:", "", false, false},
		{"host:99999", "", false, false},
		{"host:", "", false, false},
		{"", "", false, false},
		{"a..b", "", false, false},
		{"ex ample", "", false, false},
		{"exa\x00mple", "", false, false},
		{"::1", "", false, false},
	}
	for _, tt := range tests {
		host, ip, err := ParseHostHeader(tt.in)
		if (err == nil) != tt.ok || host != tt.host || ip != tt.ip {
			t.Errorf("ParseHostHeader(%q) = %q, %v, %v; want %q, %v, ok=%v", tt.in, host, ip, err, tt.host, tt.ip, tt.ok)
		}
	}
}

// FuzzParseHostHeader: the Host and Origin parsers read what any client
// sends; they must not panic, and what they accept is normalized: the
// guard compares it with allowed names as a plain string.
func FuzzParseHostHeader(f *testing.F) {
	for _, s := range []string{"localhost:8080", "[::1]:80", "10.0.0.1", "Example.com.", "http://a.example:80", "null", "[", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if host, ip, err := ParseHostHeader(s); err == nil {
			checkNormalized(t, s, host, ip)
		}
		if host, err := ParseOrigin(s); err == nil {
			checkNormalized(t, s, host, net.ParseIP(host) != nil)
		}
	})
}

func checkNormalized(t *testing.T, in, host string, ip bool) {
	t.Helper()
	if host == "" || host != normalizeHost(host) {
		t.Fatalf("%q: host %q is not normalized", in, host)
	}
	if ip != (net.ParseIP(host) != nil) {
		t.Fatalf("%q: host %q ip=%v", in, host, ip)
	}
	if !ip && strings.ContainsAny(host, ":/ []@%") {
		t.Fatalf("%q: name %q holds a separator", in, host)
	}
	again := host
	if ip && strings.Contains(host, ":") {
		again = "[" + host + "]"
	}
	if h2, ip2, err := ParseHostHeader(again); err != nil || h2 != host || ip2 != ip {
		t.Fatalf("%q: %q does not parse back: %q %v %v", in, host, h2, ip2, err)
	}
}
