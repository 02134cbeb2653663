package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// A partial write acknowledges exactly the confirmed prefix: the sink is
// offered only the rest again, so nothing is lost and the confirmed part is
// not sent twice.
func TestPartialWriteAcksPrefixOnly(t *testing.T) {
	sink := newSink("k")
	var mu sync.Mutex
	var delivered []model.Sample
	sink.write = func(_ context.Context, call int, batch []model.Sample) error {
		mu.Lock()
		defer mu.Unlock()
		if call == 1 {
			delivered = append(delivered, batch[:3]...)
			return &pipeline.PartialWriteError{Delivered: 3, Err: errors.New("record 4 failed")}
		}
		delivered = append(delivered, batch...)
		return nil
	}
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: newSource("s", samples("a/b", 1, 10))}},
		Sinks:   []SinkSpec{memSink("k", sink, 100, buffer.DropOldest)},
	})
	sink.waitCount(t, 7) // the fake records only fully successful writes
	r.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if got := values(delivered); fmt.Sprint(got) != fmt.Sprint(upTo(10)) {
		t.Fatalf("delivered %v, want each of 1..10 exactly once", got)
	}
	st := component(t, r.Status(), "sink", "k")
	if st.Counters["samples_written"] != 10 || st.Buffer.Acked != 10 {
		t.Fatalf("counters %v buffer %+v", st.Counters, st.Buffer)
	}
}

// A permanently rejected batch is counted and skipped; later data flows.
func TestRejectedBatchIsSkipped(t *testing.T) {
	sink := newSink("k")
	sink.write = func(_ context.Context, call int, _ []model.Sample) error {
		if call == 1 {
			return fmt.Errorf("http 400: %w", pipeline.ErrRejected)
		}
		return nil
	}
	src := newSource("s", samples("a/b", 1, 5), samples("a/b", 6, 5))
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks:   []SinkSpec{{Name: "k", Sink: sink, Buffer: buffer.NewMemory(100, buffer.DropOldest), BatchSize: 5}},
	})
	sink.waitFor(t, "second batch", func() bool { return sink.count() >= 5 })
	r.stop(t)
	st := component(t, r.Status(), "sink", "k")
	if st.Counters["samples_rejected"] != 5 {
		t.Fatalf("samples_rejected = %d, want 5", st.Counters["samples_rejected"])
	}
	if got := values(sink.received()); fmt.Sprint(got) != "[6 7 8 9 10]" {
		t.Fatalf("received %v", got)
	}
}

type retryAfterErr time.Duration

func (e retryAfterErr) Error() string             { return "try later" }
func (e retryAfterErr) RetryAfter() time.Duration { return time.Duration(e) }

// A destination's Retry-After delay is honoured even when the backoff
// would retry sooner.
func TestRetryAfterIsHonoured(t *testing.T) {
	const wait = 300 * time.Millisecond
	sink := newSink("k")
	var firstAt, secondAt time.Time
	sink.write = func(_ context.Context, call int, _ []model.Sample) error {
		switch call {
		case 1:
			firstAt = time.Now()
			return retryAfterErr(wait)
		case 2:
			secondAt = time.Now()
		}
		return nil
	}
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: newSource("s", samples("a/b", 1, 3))}},
		Sinks:   []SinkSpec{memSink("k", sink, 100, buffer.DropOldest)},
	})
	sink.waitCount(t, 3)
	r.stop(t)
	if gap := secondAt.Sub(firstAt); gap < wait {
		t.Fatalf("retried after %v, want at least %v", gap, wait)
	}
}

// A partial write whose rest is rejected: the prefix counts as written,
// the rest as rejected, and the sink moves on.
func TestPartialThenRejected(t *testing.T) {
	sink := newSink("k")
	sink.write = func(_ context.Context, call int, batch []model.Sample) error {
		if call == 1 {
			return &pipeline.PartialWriteError{Delivered: 2, Err: fmt.Errorf("HTTP 413: %w", pipeline.ErrRejected)}
		}
		return nil
	}
	src := newSource("s", samples("a/b", 1, 5), samples("a/b", 6, 5))
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks:   []SinkSpec{{Name: "k", Sink: sink, Buffer: buffer.NewMemory(100, buffer.DropOldest), BatchSize: 5}},
	})
	sink.waitFor(t, "second batch", func() bool { return sink.count() >= 5 })
	r.stop(t)
	st := component(t, r.Status(), "sink", "k")
	if st.Counters["samples_written"] != 7 || st.Counters["samples_rejected"] != 3 {
		t.Fatalf("written %d rejected %d, want 7 and 3", st.Counters["samples_written"], st.Counters["samples_rejected"])
	}
}

// Sequence ids must not repeat across restarts: by default they start at
// the clock in microseconds, so a second run starts above the first.
func TestDefaultFirstSeqIsAboveAPreviousRun(t *testing.T) {
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	run := func() uint64 {
		sink := newSink("k")
		e, err := New(Options{
			Sources: []SourceSpec{{Name: "s", Source: newSource("s", samples("a/b", 1, 1000))}},
			Sinks:   []SinkSpec{memSink("k", sink, 2000, buffer.DropOldest)},
			Now:     func() time.Time { return clock },
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		sink.waitCount(t, 1000)
		cancel()
		<-done
		got := sink.received()
		return got[len(got)-1].Seq
	}
	last := run()
	if want := uint64(clock.UnixMicro()) + 999; last != want {
		t.Fatalf("last seq of first run = %d, want %d", last, want)
	}
	clock = clock.Add(time.Second) // a restart a second later
	if first := run() - 999; first <= last {
		t.Fatalf("second run starts at seq %d, not above the first run's %d", first, last)
	}
}
