package durable

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// nextAck takes one batch, acks it, and returns its numbers and whether
// they were all historical (false if mixed or live).
func nextAck(t *testing.T, b *Buffer) ([]int, bool) {
	t.Helper()
	batch := next(t, b, 1000)
	hist := true
	for _, s := range batch.Samples {
		hist = hist && s.Historical
	}
	if err := b.Ack(batch); err != nil {
		t.Fatal(err)
	}
	return seqs(batch.Samples), hist
}

func noBatch(t *testing.T, b *Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if batch, err := b.Next(ctx, 1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v %v, want it to wait (rate limit)", seqs(batch.Samples), err)
	}
}

// With a drain rate, the backlog left by a restart is replayed at that
// rate in the sink's idle time: live data always goes first.
func TestDrainRateInterleaves(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{t: base}
	dir := t.TempDir() + "/sink"
	cfg := Config{Dir: dir, DrainRate: 100}
	b, err := open(cfg, testLog(t), options{now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	push(t, b, mk(base, span(1, 250)...))
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, cfg, options{now: clock.now})
	push(t, b, mk(base, 1001, 1002))

	type step struct {
		advance  time.Duration
		push     []int
		want     []int // nil: Next must wait
		wantHist bool
	}
	steps := []step{
		{0, nil, []int{1001, 1002}, false},                  // live first
		{0, nil, span(1, 100), true},                        // then a full bucket of backlog
		{0, []int{1003}, []int{1003}, false},                // live again: the bucket is empty
		{0, nil, nil, false},                                // backlog waits for tokens
		{500 * time.Millisecond, nil, span(101, 150), true}, // 0.5s at 100/s
		{0, []int{1004}, []int{1004}, false},
		{10 * time.Second, nil, span(151, 250), true}, // bucket caps at 100
	}
	for i, s := range steps {
		clock.add(s.advance)
		if len(s.push) > 0 {
			push(t, b, mk(base, s.push...))
		}
		if s.want == nil {
			noBatch(t, b)
			continue
		}
		got, hist := nextAck(t, b)
		if !slices.Equal(got, s.want) || hist != s.wantHist {
			t.Fatalf("step %d: Next = %v (historical %v), want %v (historical %v)", i, got, hist, s.want, s.wantHist)
		}
	}
	if st := b.Stats(); st.Depth != 0 || st.Backlog != 0 || st.Acked != 254 {
		t.Fatalf("stats = %+v", st)
	}
}

// Data that waited longer than backlogAfter (the sink was down) becomes
// backlog, so that what arrives next is not stuck behind it.
func TestDrainRateOutageBecomesBacklog(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{t: base}
	b := openT(t, Config{DrainRate: 1000}, options{now: clock.now})
	push(t, b, mk(base, 1, 2, 3))
	clock.add(backlogAfter + time.Second) // nobody took them: sink down
	got, hist := nextAck(t, b)
	if !slices.Equal(got, []int{1, 2, 3}) || !hist {
		t.Fatalf("Next = %v historical %v, want [1 2 3] as backlog", got, hist)
	}
	push(t, b, mk(base, 4))
	if got, hist := nextAck(t, b); !slices.Equal(got, []int{4}) || hist {
		t.Fatalf("Next = %v historical %v, want [4] live", got, hist)
	}
}

// Without a drain rate the order is FIFO: live data waits for the backlog.
func TestNoDrainRateIsFIFO(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	dir := t.TempDir() + "/sink"
	b, err := Open(Config{Dir: dir}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	push(t, b, mk(base, 1, 2))
	_ = b.Release()
	b = openT(t, Config{Dir: dir}, options{})
	push(t, b, mk(base, 3))
	if got := seqs(drainAll(t, b)); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("delivered %v, want [1 2 3]", got)
	}
}
