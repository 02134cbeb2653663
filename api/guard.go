package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// LoopbackHosts are the names every API answers to: a client on the
// gateway's own machine (the CLI, curl, a tunnel) uses one of them.
var LoopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// hostSet is the set of names and addresses the API answers to. A name
// may start with "*." to allow every subdomain below it.
type hostSet struct {
	exact    map[string]bool
	suffixes []string // ".example.com" for "*.example.com"
}

func newHostSet(hosts []string) *hostSet {
	s := &hostSet{exact: map[string]bool{}}
	for _, h := range append(append([]string{}, LoopbackHosts...), hosts...) {
		h = normalizeHost(h)
		if rest, ok := strings.CutPrefix(h, "*."); ok && rest != "" {
			s.suffixes = append(s.suffixes, "."+rest)
			continue
		}
		if h != "" {
			s.exact[h] = true
		}
	}
	return s
}

func (s *hostSet) has(host string) bool {
	if s.exact[host] {
		return true
	}
	for _, suf := range s.suffixes {
		if strings.HasSuffix(host, suf) {
			return true
		}
	}
	return false
}

// normalizeHost lowercases a name, drops a trailing dot and the brackets
// of an IPv6 literal, and writes an IP in its canonical form.
func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return h
}

var errBadHost = errors.New("not a host name or address")

// ParseHostHeader returns the host of a Host header value (host, host:port,
// [v6]:port), normalized, and whether it is an IP literal. It is strict:
// anything a browser would not send is an error.
func ParseHostHeader(v string) (host string, isIP bool, err error) {
	if v == "" || len(v) > 255+7 {
		return "", false, errBadHost
	}
	h := v
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return "", false, errBadHost
		}
		h = v[1:end]
		if rest := v[end+1:]; rest != "" {
			if p, ok := strings.CutPrefix(rest, ":"); !ok || !validPort(p) {
				return "", false, errBadHost
			}
		}
		ip := net.ParseIP(h)
		if ip == nil || ip.To4() != nil && !strings.Contains(h, ":") {
			return "", false, errBadHost
		}
		return ip.String(), true, nil
	}
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		if !validPort(v[i+1:]) {
			return "", false, errBadHost
		}
		h = v[:i]
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if ip := net.ParseIP(h); ip != nil {
		if ip.To4() == nil {
			return "", false, errBadHost // an IPv6 literal needs brackets
		}
		return ip.String(), true, nil
	}
	if h == "" || len(h) > 253 {
		return "", false, errBadHost
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return "", false, errBadHost
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "", false, errBadHost
			}
		}
	}
	return h, false, nil
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
		n = n*10 + int(r-'0')
	}
	return n <= 65535
}

// ParseOrigin returns the host of an Origin header (scheme://host[:port]),
// normalized. "null" (a sandboxed or file: page) and anything but an
// http(s) origin are errors: no page the API serves sends them.
func ParseOrigin(v string) (string, error) {
	if v == "null" || len(v) > 2048 {
		return "", errBadHost
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", errBadHost
	}
	host, _, err := ParseHostHeader(u.Host)
	return host, err
}

// guard is the outermost handler: it refuses what DNS rebinding and
// cross-site requests look like, caps the request body, and sets the
// security headers on every response, before any other handler (the
// authenticator included) sees the request.
//
// DNS rebinding makes a browser on an operator's PC send the attacker's
// requests with the attacker's name in Host; so a request whose Host is
// a name not in the allowed set is refused (421). An IP literal is always
// accepted in Host: a page can only reach it by that IP, which makes it the
// page's own origin, not a rebound one. A cross-site request from a page
// elsewhere carries that page's Origin, which must be an allowed name or
// the request's own host (403); requests without Origin (curl, the CLI,
// scrapers) pass.
type guard struct {
	next  http.Handler
	hosts atomic.Pointer[hostSet] // nil: no Host check (a handler used in tests or embedded)
	limit int64
	g     *guardState
}

func (gd *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	if r.URL.Path == "/" || r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/") {
		h.Set("Content-Security-Policy", UICSP)
		// same-origin, not no-referrer: under no-referrer a browser sends
		// "Origin: null" with a form post (the login form), which the
		// Origin check below must refuse. Other sites still get nothing.
		h.Set("Referrer-Policy", "same-origin")
	} else {
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
	}
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/status" {
		h.Set("Cache-Control", "no-store")
	}
	if hosts := gd.hosts.Load(); hosts != nil {
		host, isIP, err := ParseHostHeader(r.Host)
		if r.Host != "" && (err != nil || !isIP && !hosts.has(host)) {
			gd.g.refuse(refusedHost, r.RemoteAddr, r.URL.Path, fmt.Sprintf("request for host %q refused: not in http.allowed_hosts (DNS rebinding?)", clip(r.Host)))
			http.Error(w, "misdirected request: this API does not answer to that host name (see http.allowed_hosts)", http.StatusMisdirectedRequest)
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			oh, err := ParseOrigin(o)
			if err != nil || !hosts.has(oh) && oh != host {
				gd.g.refuse(refusedOrigin, r.RemoteAddr, r.URL.Path, fmt.Sprintf("cross-origin request from %q refused: not in http.allowed_hosts", clip(o)))
				http.Error(w, "forbidden: cross-origin request from a host not in http.allowed_hosts", http.StatusForbidden)
				return
			}
		}
	}
	if r.ContentLength > gd.limit {
		gd.g.refuse(refusedBody, r.RemoteAddr, r.URL.Path, fmt.Sprintf("request body of %d bytes refused: over http.max_body_bytes (%d)", r.ContentLength, gd.limit))
		w.Header().Set("Connection", "close")
		http.Error(w, fmt.Sprintf("request body too large (limit %d bytes)", gd.limit), http.StatusRequestEntityTooLarge)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, gd.limit)
	}
	gd.next.ServeHTTP(w, r)
}

// UICSP is the Content-Security-Policy of the web UI's pages (package
// ui): its own scripts, styles and connections only, no inline script or
// style, no framing. The API's answers keep "default-src 'none'".
const UICSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// clip bounds a client-chosen string quoted in an event or log line.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
