package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/pipeline"
)

// logRecorder is a slog.Handler that keeps every record and signals each
// one, so a test can wait for a log line instead of sleeping.
type logRecorder struct {
	mu      sync.Mutex
	records []string // "LEVEL message"
	added   chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{added: make(chan struct{}, 1)} }

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Level.String()+" "+r.Message)
	h.mu.Unlock()
	select {
	case h.added <- struct{}{}:
	default:
	}
	return nil
}

// count returns how many records start with prefix.
func (h *logRecorder) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func (h *logRecorder) waitFor(t *testing.T, prefix string) { t.Helper(); h.waitN(t, prefix, 1) }

// waitN blocks until n records start with prefix.
func (h *logRecorder) waitN(t *testing.T, prefix string, n int) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for h.count(prefix) < n {
		select {
		case <-h.added:
		case <-deadline:
			t.Fatalf("no log record %q", prefix)
		}
	}
}

var errNoSecret = fmt.Errorf("password: environment variable MQTT_PASSWORD is not set: %w", pipeline.ErrPermanent)

// A source whose Run reports pipeline.ErrPermanent is marked failed with
// the message, logged once at error level and not restarted; the other
// source keeps running and delivering.
func TestSourcePermanentError(t *testing.T) {
	logs := newLogRecorder()
	bad := newSource("bad")
	bad.before = func(run int) error { return errNoSecret }
	good := newSource("good", samples("t/x", 1, 3))
	k := newSink("k")
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "bad", Source: bad}, {Name: "good", Source: good}},
		Sinks:   []SinkSpec{memSink("k", k, 10, buffer.DropOldest)},
		Logger:  slog.New(logs),
	})
	logs.waitFor(t, "ERROR source failed permanently")
	k.waitCount(t, 3)
	c := component(t, r.Status(), "source", "bad")
	if c.State != pipeline.StateFailed || c.LastError != errNoSecret.Error() || c.LastErrorAt.IsZero() || c.Up {
		t.Fatalf("source status %+v, want failed with %q", c, errNoSecret)
	}
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := bad.runs.Load(); n != 1 {
		t.Fatalf("Run called %d times, want 1 (no restart after a permanent error)", n)
	}
	if n := logs.count("ERROR"); n != 1 {
		t.Fatalf("%d error records %v, want the one permanent failure", n, logs.records)
	}
	if c := component(t, r.Status(), "source", "bad"); c.State != pipeline.StateFailed {
		t.Fatalf("state after shutdown %q, want it to stay failed", c.State)
	}
}

// A sink whose Connect reports pipeline.ErrPermanent is marked failed, not
// reconnected, and its buffer keeps the samples; the other sink delivers.
func TestSinkPermanentError(t *testing.T) {
	logs := newLogRecorder()
	bad := newSink("bad")
	bad.connect = func(context.Context, int) error { return errNoSecret }
	good := newSink("good")
	src := newSource("s", samples("t/x", 1, 3))
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks: []SinkSpec{memSink("bad", bad, 10, buffer.DropOldest),
			memSink("good", good, 10, buffer.DropOldest)},
		Logger:       slog.New(logs),
		DrainTimeout: time.Hour, // a failed sink must not hold shutdown
	})
	logs.waitFor(t, "ERROR sink failed permanently")
	good.waitCount(t, 3)
	st := r.Status()
	c := component(t, st, "sink", "bad")
	if c.State != pipeline.StateFailed || c.LastError != errNoSecret.Error() || c.LastErrorAt.IsZero() || c.Up {
		t.Fatalf("sink status %+v, want failed with %q", c, errNoSecret)
	}
	if c.Buffer.Depth != 3 {
		t.Fatalf("failed sink's buffer %+v, want the 3 samples kept", *c.Buffer)
	}
	if !st.Ready {
		t.Fatalf("not ready (%v) although sink good is connected", st.NotReady)
	}
	if err, _ := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if connects, writes, _ := bad.calls(); connects != 1 || writes != 0 {
		t.Fatalf("Connect called %d times, Write %d: want 1 and 0", connects, writes)
	}
	if n := logs.count("ERROR"); n != 1 {
		t.Fatalf("%d error records %v, want the one permanent failure", n, logs.records)
	}
}
