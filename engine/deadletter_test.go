package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// fakeDead is a DeadLetters in memory.
type fakeDead struct {
	mu   sync.Mutex
	held map[string][]model.Sample
	fail error
}

func (d *fakeDead) Put(_ context.Context, cause string, s []model.Sample) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	if d.held == nil {
		d.held = map[string][]model.Sample{}
	}
	d.held[cause] = append(d.held[cause], s...)
	return nil
}

func (d *fakeDead) Stats() map[string]buffer.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := map[string]buffer.Stats{}
	for c, s := range d.held {
		st[c] = buffer.Stats{Depth: len(s)}
	}
	return st
}

func (d *fakeDead) get(cause string) []model.Sample {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.held[cause])
}

// One poison sample in a batch: exactly it goes to the dead-letter store
// with its cause, the other samples are confirmed once (no extra write, no
// reconnect), the batch leaves the buffer and later batches flow.
func TestPoisonSampleDeadLettered(t *testing.T) {
	sink := newSink("k")
	var mu sync.Mutex
	var delivered []model.Sample
	sink.write = func(_ context.Context, _ int, batch []model.Sample) error {
		mu.Lock()
		defer mu.Unlock()
		var rej *pipeline.RejectedError
		for i, s := range batch {
			if s.Value.AsInt() == 3 {
				pipeline.Reject(&rej, i, pipeline.CauseInvalidName, errors.New("topic is not UTF-8"))
				continue
			}
			delivered = append(delivered, s)
		}
		if rej != nil {
			return rej
		}
		return nil
	}
	dead := &fakeDead{}
	spec := memSink("k", sink, 100, buffer.DropOldest)
	spec.DeadLetters = dead
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: newSource("s", samples("a/b", 1, 5), samples("a/b", 6, 5))}},
		Sinks:   []SinkSpec{spec},
	})
	sink.waitFor(t, "the second batch", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) >= 9
	})
	r.stop(t)
	mu.Lock()
	got := values(delivered)
	mu.Unlock()
	if fmt.Sprint(got) != "[1 2 4 5 6 7 8 9 10]" {
		t.Fatalf("delivered %v, want every good sample exactly once", got)
	}
	if d := dead.get(pipeline.CauseInvalidName); len(d) != 1 || values(d)[0] != 3 {
		t.Fatalf("dead letters %v, want the poison sample 3", d)
	}
	connects, writes, _ := sink.calls()
	if connects != 1 {
		t.Fatalf("%d connects, want 1: a poison sample is no connection fault", connects)
	}
	poisonWrites := 0
	sink.mu.Lock()
	for _, a := range sink.attempts {
		for _, s := range a {
			if s == sink.attempts[0][0]+2 {
				poisonWrites++
			}
		}
	}
	sink.mu.Unlock()
	if poisonWrites != 1 || writes > 2 {
		t.Fatalf("poison offered %d times in %d writes, want once", poisonWrites, writes)
	}
	st := component(t, r.Status(), "sink", "k")
	if st.Counters["samples_rejected"] != 1 || st.Counters["samples_written"] != 9 || st.Buffer.Depth != 0 {
		t.Fatalf("counters %v buffer %+v", st.Counters, st.Buffer)
	}
	if dl := st.DeadLetters; dl == nil || dl.Rejected[pipeline.CauseInvalidName] != 1 || dl.Lost != 0 ||
		dl.Held[pipeline.CauseInvalidName] != 1 || dl.Rejected[pipeline.CauseOversize] != 0 {
		t.Fatalf("dead-letter status %+v", st.DeadLetters)
	}
}

// A whole batch refused with a plain ErrRejected goes to the dead-letter
// store under "refused"; a failing store counts the samples as lost and
// the sink still goes on.
func TestRejectedBatchDeadLettered(t *testing.T) {
	for _, storeFails := range []bool{false, true} {
		t.Run(fmt.Sprint("store_fails=", storeFails), func(t *testing.T) {
			sink := newSink("k")
			sink.write = func(_ context.Context, call int, _ []model.Sample) error {
				if call == 1 {
					return fmt.Errorf("http 400: %w", pipeline.ErrRejected)
				}
				return nil
			}
			dead := &fakeDead{}
			if storeFails {
				dead.fail = errors.New("disk full")
			}
			r := start(t, Options{
				Sources: []SourceSpec{{Name: "s", Source: newSource("s", samples("a/b", 1, 5), samples("a/b", 6, 5))}},
				Sinks:   []SinkSpec{{Name: "k", Sink: sink, Buffer: buffer.NewMemory(100, buffer.DropOldest), BatchSize: 5, DeadLetters: dead}},
			})
			sink.waitFor(t, "second batch", func() bool { return sink.count() >= 5 })
			r.stop(t)
			dl := component(t, r.Status(), "sink", "k").DeadLetters
			want := "[1 2 3 4 5]"
			wantLost := uint64(0)
			if storeFails {
				want, wantLost = "[]", 5
			}
			if got := fmt.Sprint(values(dead.get(pipeline.CauseRefused))); got != want || dl.Rejected[pipeline.CauseRefused] != 5 || dl.Lost != wantLost {
				t.Fatalf("dead letters %s, status %+v", got, dl)
			}
		})
	}
}

// Rejections are logged once per cause and then at most once per
// rejectLogEvery, with the count that went unlogged meanwhile.
func TestRejectionLogRateLimit(t *testing.T) {
	var r rejections
	t0 := time.Unix(1000, 0)
	steps := []struct {
		cause       string
		n           int
		at          time.Duration
		log         bool
		unlogged    uint64
		wantByCause uint64
	}{
		{pipeline.CauseInvalidName, 1, 0, true, 0, 1},
		{pipeline.CauseInvalidName, 4, time.Second, false, 0, 5},
		{pipeline.CauseOversize, 2, 2 * time.Second, true, 0, 2},
		{pipeline.CauseInvalidName, 1, 30 * time.Second, false, 0, 6},
		{pipeline.CauseInvalidName, 3, rejectLogEvery + time.Second, true, 5, 9},
		{pipeline.CauseInvalidName, 1, rejectLogEvery + 2*time.Second, false, 0, 10},
	}
	for i, s := range steps {
		log, unlogged := r.count(s.cause, s.n, t0.Add(s.at))
		by, _ := r.snapshot()
		if log != s.log || unlogged != s.unlogged || by[s.cause] != s.wantByCause {
			t.Fatalf("step %d: log %v unlogged %d total %d, want %v %d %d", i, log, unlogged, by[s.cause], s.log, s.unlogged, s.wantByCause)
		}
	}
}
