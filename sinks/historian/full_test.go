package historian

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-edge/weir/pipeline"
)

// TestFullRefusesRetryably: when max_bytes cannot be met (the newest day
// alone is over it) or the file system is short of min_free_bytes, Write
// refuses the whole batch with ErrFull, which is not a rejection (the
// engine retries it and the buffer keeps it), says so in Status, stores
// nothing, and accepts again once there is room.
func TestFullRefusesRetryably(t *testing.T) {
	ctx := context.Background()
	var free atomic.Int64
	free.Store(1 << 40)
	s := newSink(t, Config{Dir: t.TempDir()}, time.Unix(0, day0+dayNs/2))
	s.free = func(string) (int64, error) { return free.Load(), nil }
	if err := s.Write(ctx, daySamples(0, 500)); err != nil {
		t.Fatal(err)
	}
	count := func() int { return len(readAll(t, s.cfg.Dir)) }
	refused := func(step string) {
		t.Helper()
		before := count()
		err := s.Write(ctx, daySamples(0, 700)[600:])
		if !errors.Is(err, ErrFull) || errors.Is(err, pipeline.ErrRejected) || errors.Is(err, pipeline.ErrPermanent) {
			t.Fatalf("%s: Write = %v, want a retryable ErrFull", step, err)
		}
		var rej *pipeline.RejectedError
		if errors.As(err, &rej) {
			t.Fatalf("%s: rejected samples, want the whole batch kept by the buffer", step)
		}
		if st := s.Status(); st.Gauges["historian_full"] != 1 || st.LastError == "" {
			t.Fatalf("%s: status %+v does not say full", step, st)
		}
		if n := count(); n != before {
			t.Fatalf("%s: %d samples on disk, want the %d from before", step, n, before)
		}
	}
	accepted := func(step string, want int) {
		t.Helper()
		if err := s.Write(ctx, daySamples(0, want)[want-100:]); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if st := s.Status(); st.Gauges["historian_full"] != 0 {
			t.Fatalf("%s: still full: %+v", step, st)
		}
		if n := count(); n != want {
			t.Fatalf("%s: %d samples, want %d", step, n, want)
		}
	}

	// max_bytes below today's file: the write that crossed it is stored,
	// the next ones are refused; the only day is never deleted.
	size := s.Store().daySize(dayOf(day0))
	s.cfg.MaxBytes = size / 2
	if err := s.Write(ctx, daySamples(0, 1)); err != nil { // a replay; over the bound now
		t.Fatal(err)
	}
	refused("over max_bytes")
	refused("over max_bytes, again")
	if got := s.Status().Counters["historian_writes_refused"]; got != 2 {
		t.Fatalf("writes_refused %d, want 2", got)
	}
	s.cfg.MaxBytes = 1 << 30 // the operator raises it
	accepted("max_bytes raised", 600)

	// The file system short of min_free_bytes.
	free.Store(s.cfg.MinFreeBytes - 1)
	refused("disk almost full")
	free.Store(s.cfg.MinFreeBytes)
	accepted("space back", 700)

	// min_free_bytes -1 turns the check off.
	s.cfg.MinFreeBytes = -1
	free.Store(0)
	if err := s.Write(ctx, daySamples(0, 1)); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Store().Days(); err != nil || len(d) != 1 {
		t.Fatalf("days %v, %v", d, err)
	}
}

// TestStatusFigures: bytes and days on disk follow the files.
func TestStatusFigures(t *testing.T) {
	ctx := context.Background()
	s := newSink(t, Config{Dir: t.TempDir()}, time.Unix(0, day0+2*dayNs))
	for d := range 3 {
		if err := s.Write(ctx, daySamples(d, 100)); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Status()
	size, _ := s.Store().Size()
	if st.Gauges["historian_day_files"] != 3 || st.Gauges["historian_disk_bytes"] != float64(size) || st.Counters["historian_samples_stored"] != 300 {
		t.Fatalf("status %+v, want 3 days, %d bytes, 300 stored", st, size)
	}
}
