package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/security"
)

func TestIsCertRejection(t *testing.T) {
	srv := httptest.NewTLSServer(nil)
	defer srv.Close()
	conn, handshakeErr := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{ServerName: "example.test"})
	if handshakeErr == nil {
		conn.Close()
		t.Fatal("a handshake with an untrusted certificate succeeded")
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"real handshake, unknown CA", handshakeErr, true},
		{"wrapped", fmt.Errorf("sink uns: connect: %w", handshakeErr), true},
		{"flattened into text", errors.New("kafka: dial: tls: failed to verify certificate: x509: certificate signed by unknown authority"), true},
		{"connection refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false},
		{"permanent config error", fmt.Errorf("ca_file: %w", pipeline.ErrPermanent), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isCertRejection(tt.err); got != tt.want {
				t.Fatalf("isCertRejection(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

type eventLog struct {
	mu  sync.Mutex
	evs []security.Event
}

func (l *eventLog) Record(_ context.Context, ev security.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) all() []security.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]security.Event(nil), l.evs...)
}

// A sink whose peer's certificate fails verification is reported to the
// SOC once per streak (not once per retry); other connect failures are
// not security events.
func TestSinkCertRejectedEvent(t *testing.T) {
	srv := httptest.NewTLSServer(nil)
	defer srv.Close()
	connected := make(chan struct{})
	bad := newSink("uns")
	bad.connect = func(_ context.Context, call int) error {
		if call == 4 {
			close(connected)
			return nil
		}
		conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{ServerName: "broker.example"})
		if err == nil {
			conn.Close()
			return errors.New("handshake with an untrusted certificate succeeded")
		}
		return fmt.Errorf("mqtt: connect: %w", err)
	}
	plain := newSink("db")
	plain.connect = func(_ context.Context, call int) error {
		if call < 3 {
			return errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
		}
		return nil
	}
	evs := &eventLog{}
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: newSource("s", samples("t/x", 1, 1))}},
		Sinks:   []SinkSpec{memSink("uns", bad, 10, buffer.DropOldest), memSink("db", plain, 10, buffer.DropOldest)},
		Events:  evs,
	})
	waitClosed(t, connected)
	plain.waitCount(t, 1)
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	got := evs.all()
	if len(got) != 1 {
		t.Fatalf("%d events %+v, want one certificate rejection for three failed handshakes", len(got), got)
	}
	if ev := got[0]; ev.Kind != security.CertRejected || ev.Component != "uns" || ev.Outcome != "refused" || ev.Time.IsZero() {
		t.Fatalf("event %+v", ev)
	}
}

func waitClosed(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(2 * time.Minute):
		t.Fatal("timed out (2 min)")
	}
}
