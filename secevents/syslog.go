package secevents

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/security"
)

// errPeerClosed: the collector closed the connection. A syslog collector
// never sends anything, so a read that ends means it is gone; noticing
// that before the next write saves the messages a half-dead TCP
// connection would otherwise swallow.
var errPeerClosed = errors.New("the collector closed the connection")

// sender writes events to one syslog collector from one goroutine (run).
// Events wait in a bounded channel; enqueue never blocks.
type sender struct {
	cfg    SyslogConfig
	f      Formatter
	log    *slog.Logger
	rec    security.Recorder // where the sender reports a rejected collector certificate
	q      chan security.Event
	policy backoff.Policy
	// dial connects to the collector; a field so tests can count attempts.
	dial func(ctx context.Context) (net.Conn, error)

	sent, dropped, failed atomic.Uint64
	connected             atomic.Bool

	// Owned by run: the message being sent, framed, and whether it still
	// has to go out (after a failed write it is sent again on the next
	// connection, so an outage loses only what overflows the queue).
	msg, out []byte
	unsent   bool
}

func newSender(cfg SyslogConfig, f Formatter, log *slog.Logger, rec security.Recorder) *sender {
	s := &sender{cfg: cfg, f: f, log: log, rec: rec, q: make(chan security.Event, cfg.Queue),
		policy: backoff.Policy{Initial: 200 * time.Millisecond, Max: 30 * time.Second}}
	s.dial = s.dialCollector
	return s
}

func (s *sender) enqueue(ev security.Event) bool {
	select {
	case s.q <- ev:
		return true
	default:
		s.dropped.Add(1)
		return false
	}
}

func (s *sender) stats() *SyslogStats {
	n := len(s.q)
	return &SyslogStats{Sent: s.sent.Load(), Dropped: s.dropped.Load(), Failed: s.failed.Load(),
		Queued: n, Connected: s.connected.Load()}
}

// dialCollector connects by the configured protocol; for tls the
// certificate files are read on every attempt, so a renewed certificate
// is used on the next reconnect.
func (s *sender) dialCollector(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: s.cfg.DialTimeout}
	switch s.cfg.Protocol {
	case "udp", "tcp":
		return d.DialContext(ctx, s.cfg.Protocol, s.cfg.Address)
	}
	tc, err := s.cfg.TLS.Load()
	if err != nil {
		return nil, err
	}
	// An empty server_name is the host of address (crypto/tls does that).
	return (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", s.cfg.Address)
}

// link is a connection with, for streams, a reader that notices the
// collector closing it.
type link struct {
	net.Conn
	gone chan struct{} // closed when the reader ends; nil for udp
}

func (s *sender) open(ctx context.Context) (*link, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	l := &link{Conn: c}
	if s.cfg.Protocol != "udp" {
		l.gone = make(chan struct{})
		go func() {
			defer close(l.gone)
			_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
		}()
	}
	return l, nil
}

func (l *link) close() {
	_ = l.Conn.Close()
	if l.gone != nil {
		<-l.gone
	}
}

// run connects, sends, and reconnects with backoff and jitter until ctx
// ends; then it drains the queue while still connected.
func (s *sender) run(ctx context.Context) {
	b := backoff.Backoff{Policy: s.policy}
	failures := 0
	drained := false
	for ctx.Err() == nil {
		l, err := s.open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.failed.Add(1)
			failures++
			s.connectFailed(ctx, err, failures)
			if !backoff.Sleep(ctx, b.Next()) {
				break
			}
			continue
		}
		if failures > 0 {
			s.log.Info("syslog connected again", "failed_attempts", failures)
		} else {
			s.log.Info("syslog connected", "protocol", s.cfg.Protocol)
		}
		failures = 0
		b.Reset()
		s.connected.Store(true)
		err = s.pump(ctx, l)
		if ctx.Err() != nil {
			s.drain(l)
			drained = true
			s.connected.Store(false)
			l.close()
			break
		}
		s.connected.Store(false)
		l.close()
		s.failed.Add(1)
		s.log.Warn("syslog connection lost; reconnecting", "err", err, "queued", len(s.q))
		if !backoff.Sleep(ctx, b.Next()) {
			break
		}
	}
	if !drained && len(s.q)+boolInt(s.unsent) > 0 {
		s.lastDrain()
	}
	if n := len(s.q) + boolInt(s.unsent); n > 0 {
		s.log.Warn("security events not sent to syslog at shutdown (the collector was not reachable in time)", "events", n)
	}
}

// connectFailed logs a failed attempt: a warning for the first of a
// series, debug after (the metric counts them all). A collector whose
// certificate does not verify is also a security event of its own.
func (s *sender) connectFailed(ctx context.Context, err error, failures int) {
	if failures == 1 {
		s.log.Warn("syslog collector not reachable; events wait in the queue", "err", err, "queue", s.cfg.Queue)
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			s.rec.Record(ctx, security.Event{Kind: security.CertRejected, Severity: security.SeverityError,
				Remote: s.cfg.Address, Component: "security_events", Object: "syslog", Outcome: "refused",
				Detail: "the syslog collector's certificate does not verify: " + err.Error()})
		}
		return
	}
	s.log.Debug("syslog collector still not reachable", "err", err, "attempt", failures)
}

// pump sends queued events until a write fails, the collector closes the
// connection, or ctx ends.
func (s *sender) pump(ctx context.Context, l *link) error {
	for {
		if !s.unsent {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-l.gone:
				return errPeerClosed
			case ev := <-s.q:
				s.frame(ev)
			}
		}
		if err := s.write(l, time.Now().Add(s.cfg.WriteTimeout)); err != nil {
			return err
		}
	}
}

// lastDrain makes one more connection at shutdown when the run ended
// while not connected (between attempts, or with a dial that the end of
// ctx cut short although the collector had answered), so that what is
// queued is still sent; drain_timeout bounds the attempt and the drain.
func (s *sender) lastDrain() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	l, err := s.open(ctx)
	if err != nil {
		return
	}
	s.drain(l)
	l.close()
}

// drain sends what is queued at shutdown, until the queue is empty or
// drain_timeout has passed.
func (s *sender) drain(l *link) {
	deadline := time.Now().Add(s.cfg.DrainTimeout)
	for time.Now().Before(deadline) {
		if !s.unsent {
			select {
			case ev := <-s.q:
				s.frame(ev)
			default:
				return
			}
		}
		d := time.Now().Add(s.cfg.WriteTimeout)
		if d.After(deadline) {
			d = deadline
		}
		if err := s.write(l, d); err != nil {
			s.log.Warn("syslog: sending the queue at shutdown failed", "err", err)
			return
		}
	}
}

// frame formats ev into s.out: the bare message for udp (one per
// datagram, RFC 5426), octet-counted for tcp and tls (RFC 6587, 5425).
func (s *sender) frame(ev security.Event) {
	s.msg = s.f.Append(s.msg[:0], ev)
	if s.cfg.Protocol == "udp" {
		s.out = append(s.out[:0], s.msg...)
	} else {
		s.out = appendOctetCounted(s.out[:0], s.msg)
	}
	s.unsent = true
}

func (s *sender) write(l *link, deadline time.Time) error {
	select {
	case <-l.gone:
		return errPeerClosed
	default:
	}
	if err := l.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := l.Write(s.out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	s.unsent = false
	s.sent.Add(1)
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
