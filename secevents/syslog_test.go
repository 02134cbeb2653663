package secevents

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
	"go.uber.org/goleak"

	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
	"github.com/weir-edge/weir/security"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hang bounds every wait: a test waits for an event, never for a time.
const hang = 2 * time.Minute

// receiver is a syslog collector on 127.0.0.1:0 that parses what it
// gets with go-syslog (octet counting for streams, one message per
// datagram for udp) and hands each message on.
type receiver struct {
	t        testing.TB
	addr     string
	msgs     chan *rfc5424.SyslogMessage
	accepted chan struct{} // one token per accepted stream connection
	peer     chan []*x509.Certificate
	closeFn  func()
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func (r *receiver) close() {
	r.closeFn()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// listenStream serves tcp on addr ("127.0.0.1:0" or a port to reuse);
// with tc it serves TLS.
func listenStream(t testing.TB, addr string, tc *tls.Config) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, addr: ln.Addr().String(), msgs: make(chan *rfc5424.SyslogMessage, 10_000),
		accepted: make(chan struct{}, 100), peer: make(chan []*x509.Certificate, 100), closeFn: func() { ln.Close() }}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc != nil {
				tlsConn := tls.Server(c, tc)
				if err := tlsConn.Handshake(); err != nil {
					c.Close()
					continue
				}
				r.peer <- tlsConn.ConnectionState().PeerCertificates
				c = tlsConn
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.accepted <- struct{}{}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer c.Close()
				octetcounting.NewParser(syslog.WithListener(func(res *syslog.Result) {
					if res.Error != nil {
						t.Errorf("receiver: %v", res.Error)
						return
					}
					r.msgs <- res.Message.(*rfc5424.SyslogMessage)
				})).Parse(c)
			}()
		}
	}()
	return r
}

func listenUDP(t *testing.T) *receiver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, addr: pc.LocalAddr().String(), msgs: make(chan *rfc5424.SyslogMessage, 10_000),
		closeFn: func() { pc.Close() }}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := rfc5424.NewParser().Parse(buf[:n])
			if err != nil {
				t.Errorf("receiver: %v in %q", err, buf[:n])
				continue
			}
			r.msgs <- m.(*rfc5424.SyslogMessage)
		}
	}()
	return r
}

func (r *receiver) next(t *testing.T) *rfc5424.SyslogMessage {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(hang):
		t.Fatal("no syslog message arrived")
		return nil
	}
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hang):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// start runs the stream until the test ends (or stop is called) and
// makes its reconnects quick.
func start(t *testing.T, s *Stream) (stop func()) {
	t.Helper()
	if s.syslog != nil {
		s.syslog.policy = backoff.Policy{Initial: time.Millisecond, Max: 20 * time.Millisecond}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wait(t, done, "Run to return")
		})
	}
	t.Cleanup(stop)
	return stop
}

func newStream(t *testing.T, sc *SyslogConfig) *Stream {
	t.Helper()
	s, err := New(Config{Syslog: sc}, "line-7", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func event(i int) security.Event {
	return security.Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: security.LoginFailed,
		Severity: security.SeverityWarning, Actor: "api:alice", Remote: "10.0.0.9:1", Component: "api",
		Object: fmt.Sprintf("req-%d", i), Outcome: "failed", Detail: "wrong password"}
}

func checkMessage(t *testing.T, m *rfc5424.SyslogMessage, i int) {
	t.Helper()
	sd := (*m.StructuredData)[SDID]
	if sd["object"] != fmt.Sprintf("req-%d", i) || sd["kind"] != "auth.login_failed" || sd["node"] != "line-7" ||
		*m.Appname != "weir" || *m.Hostname != "line-7" || *m.ProcID != fmt.Sprint(os.Getpid()) ||
		*m.Facility != 4 || *m.Severity != 4 || *m.MsgID != "auth.login_failed" || *m.Message != "wrong password" {
		t.Errorf("message %d: %+v %v", i, m.Base, sd)
	}
}

// Events reach a real collector over udp, tcp and tls (with a client
// certificate), in order, octet-counted on the streams.
func TestSyslogDelivery(t *testing.T) {
	pki := tlstest.Generate(t, t.TempDir())
	serverCert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	tests := []struct {
		name   string
		listen func(t *testing.T) *receiver
		cfg    func(addr string) *SyslogConfig
	}{
		{"udp", listenUDP, func(addr string) *SyslogConfig { return &SyslogConfig{Address: addr, Protocol: "udp"} }},
		{"tcp", func(t *testing.T) *receiver { return listenStream(t, "127.0.0.1:0", nil) },
			func(addr string) *SyslogConfig { return &SyslogConfig{Address: addr, Protocol: "tcp"} }},
		{"tls with client certificate", func(t *testing.T) *receiver { return listenStream(t, "127.0.0.1:0", serverTLS) },
			func(addr string) *SyslogConfig {
				return &SyslogConfig{Address: addr, TLS: tlsconf.Config{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.listen(t)
			defer r.close()
			s := newStream(t, tt.cfg(r.addr))
			stop := start(t, s)
			const n = 50
			for i := range n {
				s.Record(context.Background(), event(i))
			}
			for i := range n {
				checkMessage(t, r.next(t), i)
			}
			if r.peer != nil && tt.name != "tcp" {
				if certs := wait(t, r.peer, "the client certificate"); len(certs) == 0 || certs[0].Subject.CommonName != "weir-test-client" {
					t.Errorf("client certificate %v", certs)
				}
			}
			stop() // the counters are final once Run returned
			if st := s.Stats().Syslog; st.Sent != n || st.Dropped != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// A collector whose certificate does not verify (another CA, or not the
// name configured) gets nothing, and the refusal is itself a security
// event (here: a sample for the sinks). The right name passes.
func TestSyslogCertificateRejected(t *testing.T) {
	pki := tlstest.Generate(t, t.TempDir())
	serverCert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	r := listenStream(t, "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert}})
	defer r.close()
	tests := []struct {
		name   string
		tls    tlsconf.Config
		refuse bool
	}{
		{"another CA", tlsconf.Config{CAFile: pki.OtherCA}, true},
		{"wrong server_name", tlsconf.Config{CAFile: pki.CA, ServerName: "siem.example"}, true},
		{"server_name in the certificate", tlsconf.Config{CAFile: pki.CA, ServerName: "localhost"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStream(t, &SyslogConfig{Address: r.addr, TLS: tt.tls})
			events := make(chan security.Event, 1)
			s.syslog.rec = security.RecorderFunc(func(ctx context.Context, ev security.Event) {
				s.Record(ctx, ev)
				events <- ev
			})
			start(t, s)
			if !tt.refuse {
				s.Record(context.Background(), event(0))
				checkMessage(t, r.next(t), 0)
				return
			}
			ev := wait(t, events, "the certificate rejection")
			if ev.Kind != security.CertRejected || ev.Remote != r.addr || ev.Outcome != "refused" {
				t.Fatalf("event %+v", ev)
			}
			out := s.Flush(time.Now(), nil)
			if len(out) != 1 || out[0].Path != "weir/_security/tls.cert_rejected" {
				t.Fatalf("samples %v", out)
			}
			if st := s.Stats().Syslog; st.Sent != 0 || st.Failed == 0 || st.Connected {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// logSignal is a slog.Handler that hands every message on, so a test
// waits for what the component says it did.
type logSignal chan string

func (h logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h logSignal) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r.Message:
	default:
	}
	return nil
}
func (h logSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logSignal) WithGroup(string) slog.Handler      { return h }

func waitLog(t *testing.T, logs logSignal, msg string) {
	t.Helper()
	for {
		if wait(t, logs, msg) == msg {
			return
		}
	}
}

// With the collector away, Record never blocks: the queue fills, the
// rest is dropped and counted; when the collector comes back on the same
// address the stream reconnects by itself and sends what was queued.
func TestSyslogOutage(t *testing.T) {
	r := listenStream(t, "127.0.0.1:0", nil)
	addr := r.addr
	logs := make(logSignal, 1000)
	s, err := New(Config{Syslog: &SyslogConfig{Address: addr, Protocol: "tcp", Queue: 20}}, "line-7", slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	s.Record(context.Background(), event(0))
	checkMessage(t, r.next(t), 0)
	r.close() // the collector dies
	waitLog(t, logs, "syslog connection lost; reconnecting")

	// Every Record returns although nothing is sent: 1000 events for a
	// queue of 20. (A blocking Record would hang here until the bound.)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 1000; i++ {
			s.Record(context.Background(), event(i))
		}
	}()
	wait(t, done, "Record to return with the collector down")
	if st := s.Stats().Syslog; st.Dropped != 980 || st.Queued != 20 || st.Connected || st.Failed == 0 {
		t.Fatalf("with the collector down: %+v, want 980 dropped and 20 queued", st)
	}

	r2 := listenStream(t, addr, nil) // the collector is back
	defer r2.close()
	for i := 1; i <= 20; i++ {
		checkMessage(t, r2.next(t), i)
	}
	waitLog(t, logs, "syslog connected again")
	s.Record(context.Background(), event(21))
	checkMessage(t, r2.next(t), 21)
	stop()
	if st := s.Stats().Syslog; st.Sent != 22 || st.Dropped != 980 {
		t.Errorf("after healing: %+v", st)
	}
}

// At shutdown the queue is sent while the collector is connected.
func TestSyslogDrainAtShutdown(t *testing.T) {
	r := listenStream(t, "127.0.0.1:0", nil)
	defer r.close()
	s := newStream(t, &SyslogConfig{Address: r.addr, Protocol: "tcp"})
	stop := start(t, s)
	wait(t, r.accepted, "the connection")
	const n = 500
	for i := range n {
		s.Record(context.Background(), event(i))
	}
	stop()
	for i := range n {
		checkMessage(t, r.next(t), i)
	}
}

// A collector that accepts but stops reading (hung, or overloaded) does
// not hold the sender forever: the write times out, the connection is
// dropped and made again, and Record never waits for any of it. Small
// socket buffers make the stall come after a few KiB.
func TestSyslogStalledCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 10)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			accepted <- c // never read
		}
	}()
	defer func() {
		ln.Close()
		wg.Wait()
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	}()
	logs := make(logSignal, 1000)
	s, err := New(Config{ToSinks: boolp(false), Syslog: &SyslogConfig{Address: ln.Addr().String(), Protocol: "tcp",
		Queue: 2000, WriteTimeout: 200 * time.Millisecond}}, "line-7", slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	dial := s.syslog.dial
	s.syslog.dial = func(ctx context.Context) (net.Conn, error) {
		c, err := dial(ctx)
		if err == nil {
			_ = c.(*net.TCPConn).SetWriteBuffer(4096)
		}
		return c, err
	}
	stop := start(t, s)
	first := wait(t, accepted, "the first connection")
	defer first.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ev := event(0)
		ev.Detail = strings.Repeat("x", MaxDetail)
		for range 2000 { // 2 MiB: far more than the socket buffers hold
			s.Record(context.Background(), ev)
		}
	}()
	wait(t, done, "Record to return while the collector does not read")
	waitLog(t, logs, "syslog connection lost; reconnecting")
	second := wait(t, accepted, "the reconnect")
	defer second.Close()
	stop()
	if st := s.Stats().Syslog; st.Failed == 0 || st.Sent == 0 || st.Sent >= 2000 {
		t.Errorf("stats %+v", st)
	}
}
