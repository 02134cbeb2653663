package historian

import (
	"context"
	"errors"
	"strings"
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

// TestMinMaxBytesNotFullOfWAL: at the smallest max_bytes (1 MiB) a day
// with little data in it is not reported full because of its WAL. Many
// small commits grow the WAL; the checkpoint interval follows max_bytes,
// the WAL is truncated before the store is declared full, and the bound
// counts the data.
func TestMinMaxBytesNotFullOfWAL(t *testing.T) {
	ctx := context.Background()
	s := newSink(t, Config{Dir: t.TempDir(), MaxBytes: minMaxBytes, MinFreeBytes: -1}, time.Unix(0, day0+dayNs/2))
	const batches, per = 200, 50
	all := daySamples(0, batches*per)
	for i := range batches {
		if err := s.Write(ctx, all[i*per:(i+1)*per]); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	st := s.Status()
	if st.Gauges["historian_full"] != 0 {
		t.Fatalf("full with %d samples: %+v", batches*per, st)
	}
	if b := st.Gauges["historian_disk_bytes"]; b > float64(minMaxBytes) {
		t.Fatalf("%v bytes on disk, over max_bytes %d", b, minMaxBytes)
	}
	if n := len(readAll(t, s.cfg.Dir)); n != batches*per {
		t.Fatalf("%d samples stored, want %d", n, batches*per)
	}
}

// TestFullAdvice: the refusal suggests compression only when it is off.
func TestFullAdvice(t *testing.T) {
	for _, tc := range []struct {
		name string
		comp bool
		want bool
	}{{"compression off", false, true}, {"compression on", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Dir: t.TempDir(), MinFreeBytes: -1}
			if tc.comp {
				cfg.Compression.Method, cfg.Compression.Deviation = MethodDeadband, 0.5
			}
			s := newSink(t, cfg, time.Unix(0, day0+dayNs/2))
			if err := s.Write(context.Background(), daySamples(0, 200)); err != nil {
				t.Fatal(err)
			}
			s.cfg.MaxBytes = 1
			s.enforce(s.Store())
			err := s.Write(context.Background(), daySamples(0, 300)[200:])
			if !errors.Is(err, ErrFull) {
				t.Fatalf("Write = %v, want ErrFull", err)
			}
			if got := strings.Contains(err.Error(), "turn on compression"); got != tc.want {
				t.Fatalf("message %q mentions compression: %v, want %v", err, got, tc.want)
			}
		})
	}
}
