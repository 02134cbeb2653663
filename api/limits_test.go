package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/security"
)

// One client cannot hold more than its share of connections: the N+1st
// real connection from 127.0.0.1 is closed unanswered, counted and
// reported, while the N open ones keep working.
func TestPerClientConnectionLimit(t *testing.T) {
	const perClient = 3
	ev := newEvents()
	base, _ := serve(t, Options{Status: &fakeStatus{}, Events: ev, Limits: Limits{MaxConnsPerClient: perClient}})
	addr := strings.TrimPrefix(base, "http://")
	var open []net.Conn
	for i := 0; i < perClient; i++ {
		c := dial(t, addr)
		open = append(open, c)
		if code, err := rawGet(c, "/healthz"); err != nil || code != 200 {
			t.Fatalf("connection %d: %d %v", i, code, err)
		}
	}
	extra := dial(t, addr)
	if code, err := rawGet(extra, "/healthz"); err == nil {
		t.Fatalf("connection %d answered %d, want it closed", perClient+1, code)
	}
	ref := ev.waitFor(t, security.RequestRefused)
	if !strings.Contains(ref.Detail, "max_connections_per_client") || ref.Remote == "" {
		t.Errorf("refusal event = %+v", ref)
	}
	// The open connections still work, and the refusal is in the metrics.
	c := open[0]
	if _, err := fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`weir_api_requests_refused_total{reason="client_connections"} 1`, "weir_api_connections_open 3", "weir_api_new_peers_total 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(string(body), "weir_api_"))
		}
	}
	if n := ev.kinds()[security.NewPeer]; n != 1 {
		t.Errorf("%d NewPeer events for one client, want 1", n)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawGet sends one keep-alive request on c and reads the answer.
func rawGet(c net.Conn, path string) (int, error) {
	if err := c.SetDeadline(time.Now().Add(2 * time.Minute)); err != nil { // bounds a hang only
		return 0, err
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// The limiter's bookkeeping: per-client and total caps, slots given back
// on close, the per-client table emptied (it stays bounded), peers
// remembered in a bounded set.
func TestConnLimiterAccounting(t *testing.T) {
	l := newConnLimiter(nil, newGuardState(nil, nil, nil), Limits{MaxConnsPerClient: 2, MaxConns: 3})
	steps := []struct {
		ip, want string
		isNew    bool
	}{
		{"10.0.0.1", "", true},
		{"10.0.0.1", "", false},
		{"10.0.0.1", refusedClientConns, false},
		{"10.0.0.2", "", true},
		{"10.0.0.3", refusedConns, true},
	}
	for i, s := range steps {
		got, isNew := l.admit(s.ip)
		if got != s.want || isNew != s.isNew {
			t.Fatalf("step %d (%s): admit = %q new=%v, want %q new=%v", i, s.ip, got, isNew, s.want, s.isNew)
		}
	}
	l.release("10.0.0.2")
	if got, _ := l.admit("10.0.0.3"); got != "" {
		t.Fatalf("after a release: %q", got)
	}
	for _, ip := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.3"} {
		l.release(ip)
	}
	if l.open != 0 || len(l.byClient) != 0 {
		t.Fatalf("after every release: open %d, table %v", l.open, l.byClient)
	}
	for i := 0; i < maxPeers+10; i++ {
		ip := fmt.Sprintf("fd00::%x", i)
		if _, isNew := l.admit(ip); !isNew {
			t.Fatalf("%s not new", ip)
		}
		l.release(ip)
	}
	if len(l.seen) != maxPeers || len(l.seenFIFO) != maxPeers {
		t.Fatalf("seen set holds %d (fifo %d), want %d", len(l.seen), len(l.seenFIFO), maxPeers)
	}
	if _, isNew := l.admit("10.0.0.1"); !isNew {
		t.Fatal("the oldest peer was not forgotten")
	}
}

// A flood of refusals yields at most eventsPerMinute events a minute; the
// next one says how many were left out.
func TestEventRateLimit(t *testing.T) {
	ev := newEvents()
	g := newGuardState(nil, ev, nil)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	g.limiters[security.RequestRefused].now = func() time.Time { return now }
	for i := 0; i < 1000; i++ {
		g.refuse(refusedHost, "10.0.0.9:1", "/x", "refused")
	}
	if n := ev.kinds()[security.RequestRefused]; n != eventsPerMinute {
		t.Fatalf("%d events in a minute, want %d", n, eventsPerMinute)
	}
	if got := g.refused[refusedHost].Load(); got != 1000 {
		t.Fatalf("counted %d refusals, want every one", got)
	}
	now = now.Add(time.Minute)
	g.refuse(refusedHost, "10.0.0.9:1", "/x", "refused")
	last := ev.evs[len(ev.evs)-1]
	if !strings.Contains(last.Detail, fmt.Sprintf("%d more", 1000-eventsPerMinute)) {
		t.Fatalf("next event = %q, want the suppressed count", last.Detail)
	}
}

// With the default limit, one client's DefaultMaxConnsPerClient idle
// connections all stay open and usable — opened first and left idle, then
// used for keep-alive requests; the next one is refused and reported once.
// (A review saw only 22 of 32 stay open: its connections sent nothing for
// more than the 5 s header timeout, which closed them; that close is now
// counted, below.)
func TestPerClientConnectionLimitDefault(t *testing.T) {
	ev := newEvents()
	base, _ := serve(t, Options{Status: &fakeStatus{}, Events: ev})
	addr := strings.TrimPrefix(base, "http://")
	// A connection that closes before sending a request is counted (and
	// its slot given back before the count moves).
	first := dial(t, addr)
	silent := dial(t, addr)
	silent.Close()
	want := "weir_api_connections_closed_before_request_total 1"
	for deadline := time.Now().Add(2 * time.Minute); ; { // bounds a hang only
		if body := metricsOn(t, first); strings.Contains(body, want) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q:\n%s", want, grepLines(body, "weir_api_"))
		}
	}
	open := []net.Conn{first}
	for len(open) < DefaultMaxConnsPerClient {
		open = append(open, dial(t, addr))
	}
	extra := dial(t, addr)
	if code, err := rawGet(extra, "/healthz"); err == nil {
		t.Fatalf("connection %d answered %d, want it closed", DefaultMaxConnsPerClient+1, code)
	}
	ev.waitFor(t, security.RequestRefused)
	for round := range 2 {
		for i, c := range open {
			if code, err := rawGet(c, "/healthz"); err != nil || code != 200 {
				t.Fatalf("round %d, connection %d: %d %v", round, i, code, err)
			}
		}
	}
	if n := ev.kinds()[security.RequestRefused]; n != 1 {
		t.Errorf("%d RequestRefused events, want 1", n)
	}
}

// metricsOn reads /metrics over the keep-alive connection c.
func metricsOn(t *testing.T, c net.Conn) string {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(2 * time.Minute)); err != nil { // bounds a hang only
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
