// Package buffertest is the conformance suite every buffer.Buffer
// implementation runs: the memory buffer, the durable buffer, and any
// later one. It is a package of its own so that implementations in other
// packages can import it from their tests.
package buffertest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
)

// Run is the conformance suite. newBuf must return an empty buffer with the
// given capacity (in samples) and policy; the suite closes what it creates,
// and newBuf may register its own cleanup with t (it runs after Close).
func Run(t *testing.T, newBuf func(t *testing.T, capacity int, p buffer.Policy) buffer.Buffer) {
	t.Helper()
	open := func(t *testing.T, capacity int, p buffer.Policy) buffer.Buffer {
		t.Helper()
		b := newBuf(t, capacity, p)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}

	t.Run("fifo", func(t *testing.T) {
		tests := []struct {
			name   string
			pushes [][]int
			max    int
			want   [][]int // batches handed out, each acked
		}{
			{"one push one batch", [][]int{{1, 2, 3}}, 10, [][]int{{1, 2, 3}}},
			{"max splits", [][]int{{1, 2, 3, 4, 5}}, 2, [][]int{{1, 2}, {3, 4}, {5}}},
			{"batches span pushes", [][]int{{1, 2}, {3}, {4, 5, 6}}, 4, [][]int{{1, 2, 3, 4}, {5, 6}}},
			{"max one", [][]int{{1, 2, 3}}, 1, [][]int{{1}, {2}, {3}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := open(t, 16, buffer.DropOldest)
				total := 0
				for _, p := range tt.pushes {
					push(t, b, mk(p...))
					total += len(p)
				}
				for _, want := range tt.want {
					got := next(t, b, tt.max)
					if !slices.Equal(ids(got), want) {
						t.Fatalf("Next = %v, want %v", ids(got), want)
					}
					if got.Len() != len(want) {
						t.Fatalf("Len = %d, want %d", got.Len(), len(want))
					}
					ack(t, b, got)
				}
				st := b.Stats()
				if st.Pushed != uint64(total) || st.Acked != uint64(total) || st.Depth != 0 || st.Dropped != 0 {
					t.Fatalf("stats = %+v, want pushed=acked=%d depth=0 dropped=0", st, total)
				}
			})
		}
	})

	t.Run("overflow", func(t *testing.T) {
		tests := []struct {
			name        string
			policy      buffer.Policy
			pushes      [][]int
			wantHeld    []int
			wantDropped uint64
			wantPushed  uint64
		}{
			{"drop_oldest fits", buffer.DropOldest, [][]int{{1, 2}, {3, 4}}, []int{1, 2, 3, 4}, 0, 4},
			{"drop_oldest one over", buffer.DropOldest, [][]int{{1, 2, 3, 4}, {5}}, []int{2, 3, 4, 5}, 1, 5},
			{"drop_oldest partial room", buffer.DropOldest, [][]int{{1, 2, 3}, {4, 5, 6}}, []int{3, 4, 5, 6}, 2, 6},
			{"drop_oldest push larger than capacity", buffer.DropOldest, [][]int{span(1, 10)}, []int{7, 8, 9, 10}, 6, 10},
			{"drop_oldest many small", buffer.DropOldest, [][]int{{1}, {2}, {3}, {4}, {5}, {6}, {7}}, []int{4, 5, 6, 7}, 3, 7},
			{"drop_newest fits", buffer.DropNewest, [][]int{{1, 2}, {3, 4}}, []int{1, 2, 3, 4}, 0, 4},
			{"drop_newest one over", buffer.DropNewest, [][]int{{1, 2, 3, 4}, {5}}, []int{1, 2, 3, 4}, 1, 4},
			{"drop_newest partial room", buffer.DropNewest, [][]int{{1, 2, 3}, {4, 5, 6}}, []int{1, 2, 3, 4}, 2, 4},
			{"drop_newest push larger than capacity", buffer.DropNewest, [][]int{span(1, 10)}, []int{1, 2, 3, 4}, 6, 4},
			{"block exactly full", buffer.Block, [][]int{{1, 2}, {3, 4}}, []int{1, 2, 3, 4}, 0, 4},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := open(t, 4, tt.policy)
				for _, p := range tt.pushes {
					push(t, b, mk(p...))
				}
				st := b.Stats()
				if st.Dropped != tt.wantDropped || st.Pushed != tt.wantPushed || st.Depth != len(tt.wantHeld) || st.Capacity != 4 {
					t.Fatalf("stats = %+v, want dropped=%d pushed=%d depth=%d capacity=4",
						st, tt.wantDropped, tt.wantPushed, len(tt.wantHeld))
				}
				if got := drain(t, b); !slices.Equal(got, tt.wantHeld) {
					t.Fatalf("held %v, want %v", got, tt.wantHeld)
				}
			})
		}
	})

	t.Run("drop_oldest while in flight", func(t *testing.T) {
		// Capacity 4 holding 1..4, batch 1..2 in flight, then more pushed.
		tests := []struct {
			name            string
			extra           []int
			nack            bool // Nack the in-flight batch instead of Ack
			wantDropped     uint64
			wantAcked       uint64
			wantRedelivered uint64
			wantNext        []int
		}{
			{"ack, nothing dropped", nil, false, 0, 2, 0, []int{3, 4}},
			{"ack, half the batch dropped", []int{5}, false, 1, 1, 0, []int{3, 4, 5}},
			{"ack, whole batch dropped", []int{5, 6}, false, 2, 0, 0, []int{3, 4, 5, 6}},
			{"ack, batch and more dropped", []int{5, 6, 7}, false, 3, 0, 0, []int{4, 5, 6, 7}},
			{"nack, nothing dropped", nil, true, 0, 0, 2, []int{1, 2, 3, 4}},
			{"nack, half the batch dropped", []int{5}, true, 1, 0, 1, []int{2, 3, 4, 5}},
			{"nack, whole batch dropped", []int{5, 6}, true, 2, 0, 0, []int{3, 4, 5, 6}},
			{"nack, batch and more dropped", []int{5, 6, 7}, true, 3, 0, 0, []int{4, 5, 6, 7}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := open(t, 4, buffer.DropOldest)
				push(t, b, mk(1, 2, 3, 4))
				inFlight := next(t, b, 2)
				if got := ids(inFlight); !slices.Equal(got, []int{1, 2}) {
					t.Fatalf("in flight %v, want [1 2]", got)
				}
				if len(tt.extra) > 0 {
					push(t, b, mk(tt.extra...))
				}
				// What the sink holds is a copy: dropping must not change it.
				if got := ids(inFlight); !slices.Equal(got, []int{1, 2}) {
					t.Fatalf("in-flight batch changed to %v by a drop", got)
				}
				if tt.nack {
					b.Nack(inFlight)
				} else {
					ack(t, b, inFlight)
				}
				st := b.Stats()
				if st.Dropped != tt.wantDropped || st.Acked != tt.wantAcked || st.Redelivered != tt.wantRedelivered {
					t.Fatalf("stats = %+v, want dropped=%d acked=%d redelivered=%d",
						st, tt.wantDropped, tt.wantAcked, tt.wantRedelivered)
				}
				// Every accepted sample is accounted for exactly once.
				if st.Pushed != st.Acked+st.Dropped+uint64(st.Depth) {
					t.Fatalf("pushed %d != acked %d + dropped %d + depth %d", st.Pushed, st.Acked, st.Dropped, st.Depth)
				}
				got := next(t, b, 10)
				if !slices.Equal(ids(got), tt.wantNext) {
					t.Fatalf("Next = %v, want %v", ids(got), tt.wantNext)
				}
				ack(t, b, got)
				st = b.Stats()
				if st.Depth != 0 || st.Acked+st.Dropped != st.Pushed {
					t.Fatalf("after final ack stats = %+v, want depth 0 and acked+dropped=pushed", st)
				}
			})
		}
	})

	t.Run("nack redelivers", func(t *testing.T) {
		tests := []struct {
			name     string
			first    int // max of the nacked Next
			nacks    int // how many times the same batch fails
			second   int // max of the Next after the nack
			wantNext []int
		}{
			{"same size", 3, 1, 3, []int{1, 2, 3}},
			{"repeated failures", 3, 4, 3, []int{1, 2, 3}},
			{"smaller retry", 3, 1, 2, []int{1, 2}},
			{"larger retry continues in order", 2, 1, 10, []int{1, 2, 3, 4, 5}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := open(t, 8, buffer.DropOldest)
				push(t, b, mk(1, 2, 3, 4, 5))
				var redelivered uint64
				for range tt.nacks {
					got := next(t, b, tt.first)
					if want := span(1, tt.first); !slices.Equal(ids(got), want) {
						t.Fatalf("Next = %v, want %v", ids(got), want)
					}
					b.Nack(got)
					redelivered += uint64(tt.first)
				}
				got := next(t, b, tt.second)
				if !slices.Equal(ids(got), tt.wantNext) {
					t.Fatalf("redelivered %v, want %v", ids(got), tt.wantNext)
				}
				ack(t, b, got)
				st := b.Stats()
				if st.Redelivered != redelivered || st.Acked != uint64(len(tt.wantNext)) || st.Depth != 5-len(tt.wantNext) {
					t.Fatalf("stats = %+v, want redelivered=%d acked=%d depth=%d",
						st, redelivered, len(tt.wantNext), 5-len(tt.wantNext))
				}
				if rest := drain(t, b); !slices.Equal(rest, span(len(tt.wantNext)+1, 5)) {
					t.Fatalf("rest %v, want %v", rest, span(len(tt.wantNext)+1, 5))
				}
			})
		}
	})

	t.Run("ack is idempotent", func(t *testing.T) {
		b := open(t, 8, buffer.DropOldest)
		push(t, b, mk(1, 2, 3))
		got := next(t, b, 2)
		ack(t, b, got)
		ack(t, b, got)
		ack(t, b, buffer.Batch{})
		if st := b.Stats(); st.Acked != 2 || st.Depth != 1 {
			t.Fatalf("stats = %+v, want acked=2 depth=1", st)
		}
	})

	t.Run("push copies", func(t *testing.T) {
		b := open(t, 8, buffer.DropOldest)
		in := mk(1, 2)
		push(t, b, in)
		in[0].Seq, in[1].Path = 99, "changed"
		got := next(t, b, 10)
		if !slices.Equal(ids(got), []int{1, 2}) || got.Samples[1].Path != "t/x" {
			t.Fatalf("buffer kept the caller's slice: %+v", got.Samples)
		}
	})

	t.Run("block waits for ack", func(t *testing.T) {
		b := open(t, 2, buffer.Block)
		push(t, b, mk(1, 2))
		done := make(chan error, 1)
		go func() { done <- b.Push(context.Background(), mk(3)) }()
		stillBlocked(t, done, "Push into a full block buffer")
		inFlight := next(t, b, 1)
		// Handing a sample out does not free room: it is not confirmed yet.
		stillBlocked(t, done, "Push while the batch is only in flight")
		ack(t, b, inFlight)
		if err := waitErr(t, done); err != nil {
			t.Fatalf("Push after Ack = %v", err)
		}
		if got := drain(t, b); !slices.Equal(got, []int{2, 3}) {
			t.Fatalf("held %v, want [2 3]", got)
		}
		if st := b.Stats(); st.Dropped != 0 || st.Pushed != 3 {
			t.Fatalf("stats = %+v, want dropped=0 pushed=3", st)
		}
	})

	t.Run("block push larger than capacity", func(t *testing.T) {
		b := open(t, 3, buffer.Block)
		done := make(chan error, 1)
		go func() { done <- b.Push(context.Background(), mk(span(1, 10)...)) }()
		var got []int
		for len(got) < 10 {
			batch := next(t, b, 2)
			got = append(got, ids(batch)...)
			ack(t, b, batch)
		}
		if err := waitErr(t, done); err != nil {
			t.Fatalf("Push = %v", err)
		}
		if !slices.Equal(got, span(1, 10)) {
			t.Fatalf("got %v, want 1..10", got)
		}
	})

	t.Run("block ctx", func(t *testing.T) {
		tests := []struct {
			name    string
			ctx     func() (context.Context, context.CancelFunc)
			trigger bool // cancel while Push waits
			want    error
		}{
			{"cancelled while waiting", func() (context.Context, context.CancelFunc) {
				return context.WithCancel(context.Background())
			}, true, context.Canceled},
			{"deadline while waiting", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 20*time.Millisecond)
			}, false, context.DeadlineExceeded},
			{"already cancelled", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			}, false, context.Canceled},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := open(t, 1, buffer.Block)
				push(t, b, mk(1))
				ctx, cancel := tt.ctx()
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- b.Push(ctx, mk(2)) }()
				if tt.trigger {
					stillBlocked(t, done, "Push into a full block buffer")
					cancel()
				}
				if err := waitErr(t, done); !errors.Is(err, tt.want) {
					t.Fatalf("Push = %v, want %v", err, tt.want)
				}
				if st := b.Stats(); st.Depth != 1 || st.Dropped != 0 || st.Pushed != 1 {
					t.Fatalf("stats = %+v, want depth=1 dropped=0 pushed=1", st)
				}
				// The buffer still works.
				if got := drain(t, b); !slices.Equal(got, []int{1}) {
					t.Fatalf("held %v, want [1]", got)
				}
			})
		}
	})

	t.Run("close wakes push", func(t *testing.T) {
		b := open(t, 1, buffer.Block)
		push(t, b, mk(1))
		done := make(chan error, 1)
		go func() { done <- b.Push(context.Background(), mk(2)) }()
		stillBlocked(t, done, "Push into a full block buffer")
		if err := b.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if err := waitErr(t, done); !errors.Is(err, buffer.ErrClosed) {
			t.Fatalf("Push = %v, want buffer.ErrClosed", err)
		}
	})

	t.Run("close wakes next", func(t *testing.T) {
		b := open(t, 4, buffer.DropOldest)
		done := make(chan error, 1)
		go func() {
			_, err := b.Next(context.Background(), 1)
			done <- err
		}()
		stillBlocked(t, done, "Next on an empty buffer")
		if err := b.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if err := waitErr(t, done); !errors.Is(err, buffer.ErrClosed) {
			t.Fatalf("Next = %v, want buffer.ErrClosed", err)
		}
	})

	t.Run("next honours ctx", func(t *testing.T) {
		b := open(t, 4, buffer.DropOldest)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := b.Next(ctx, 1)
			done <- err
		}()
		stillBlocked(t, done, "Next on an empty buffer")
		cancel()
		if err := waitErr(t, done); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next = %v, want context.Canceled", err)
		}
		// A push after the cancelled wait is still delivered.
		push(t, b, mk(7))
		if got := drain(t, b); !slices.Equal(got, []int{7}) {
			t.Fatalf("held %v, want [7]", got)
		}
	})

	t.Run("next after close drains", func(t *testing.T) {
		b := open(t, 8, buffer.DropOldest)
		push(t, b, mk(1, 2, 3))
		inFlight := next(t, b, 1)
		if err := b.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if err := b.Push(context.Background(), mk(4)); !errors.Is(err, buffer.ErrClosed) {
			t.Fatalf("Push after Close = %v, want buffer.ErrClosed", err)
		}
		// The batch in flight at Close can still fail and come back.
		b.Nack(inFlight)
		var got []int
		for {
			batch, err := b.Next(context.Background(), 2)
			if errors.Is(err, buffer.ErrClosed) {
				break
			}
			if err != nil {
				t.Fatalf("Next = %v", err)
			}
			got = append(got, ids(batch)...)
			ack(t, b, batch)
		}
		if !slices.Equal(got, []int{1, 2, 3}) {
			t.Fatalf("drained %v, want [1 2 3]", got)
		}
		if st := b.Stats(); st.Depth != 0 || st.Acked != 3 {
			t.Fatalf("stats = %+v, want depth=0 acked=3", st)
		}
	})

	t.Run("stats", func(t *testing.T) {
		b := open(t, 3, buffer.DropOldest)
		want := buffer.Stats{Capacity: 3}
		check := func(step string) {
			t.Helper()
			if got := core(b.Stats()); got != want {
				t.Fatalf("%s: stats = %+v, want %+v", step, got, want)
			}
		}
		check("empty")
		push(t, b, mk(1, 2))
		want.Pushed, want.Depth, want.OldestEdgeTime = 2, 2, edgeTime(1)
		check("after push")
		batch := next(t, b, 1)
		check("in flight counts in depth")
		b.Nack(batch)
		want.Redelivered = 1
		check("after nack")
		batch = next(t, b, 1)
		ack(t, b, batch)
		want.Acked, want.Depth, want.OldestEdgeTime = 1, 1, edgeTime(2)
		check("after ack")
		push(t, b, mk(3, 4, 5))
		want.Pushed, want.Dropped, want.DroppedFull, want.Depth, want.OldestEdgeTime = 5, 1, 1, 3, edgeTime(3)
		check("after drop")
		batch = next(t, b, 10)
		ack(t, b, batch)
		want.Acked, want.Depth, want.OldestEdgeTime = 4, 0, 0
		check("drained")
	})

	t.Run("concurrent producers", func(t *testing.T) {
		const producers, perProducer = 4, 1500
		tests := []struct {
			name     string
			capacity int
			policy   buffer.Policy
		}{
			{"block small", 16, buffer.Block},
			{"block one", 1, buffer.Block},
			{"drop_oldest roomy", producers * perProducer, buffer.DropOldest},
			{"drop_newest roomy", producers * perProducer, buffer.DropNewest},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := open(t, tt.capacity, tt.policy)
				consumed := make(chan [][]uint64, 1)
				go func() { consumed <- consume(b) }()
				var wg sync.WaitGroup
				for p := range producers {
					wg.Go(func() {
						batch := make([]model.Sample, 0, 7)
						for i := 0; i < perProducer; {
							n := min(1+(i+p)%7, perProducer-i) // batch sizes 1..7
							batch = batch[:0]
							for j := range n {
								batch = append(batch, model.Sample{Path: "t/x", Seq: uint64(p)<<32 | uint64(i+j)})
							}
							if err := b.Push(context.Background(), batch); err != nil {
								t.Errorf("producer %d: Push = %v", p, err)
								return
							}
							i += n
						}
					})
				}
				produced := make(chan struct{})
				go func() { wg.Wait(); close(produced) }()
				// Blocked means no progress, not slow: with fsync on every
				// push a loaded machine may take minutes for 6,000 samples.
				if !waitProgress(produced, func() uint64 { return b.Stats().Pushed }, stallLimit) {
					t.Errorf("producers made no progress for %s: blocked", stallLimit)
				}
				// Close also wakes producers stuck above, so the test ends.
				if err := b.Close(); err != nil {
					t.Fatalf("Close = %v", err)
				}
				<-produced
				var got [][]uint64
				select {
				case got = <-consumed:
				case <-time.After(stallLimit):
					t.Fatal("consumer did not finish")
				}
				for p := range producers {
					if len(got[p]) != perProducer {
						t.Errorf("producer %d: %d samples acked, want %d", p, len(got[p]), perProducer)
						continue
					}
					for i, v := range got[p] {
						if v != uint64(i) {
							t.Errorf("producer %d: sample %d is %d: lost, duplicated or reordered", p, i, v)
							break
						}
					}
				}
				st := b.Stats()
				if st.Pushed != producers*perProducer || st.Acked != producers*perProducer || st.Dropped != 0 || st.Depth != 0 {
					t.Errorf("stats = %+v, want pushed=acked=%d dropped=0 depth=0", st, producers*perProducer)
				}
				if st.Redelivered == 0 {
					t.Errorf("stats = %+v: the consumer nacked batches but nothing was redelivered", st)
				}
			})
		}
	})
}

// core is the part of Stats every implementation fills the same way; the
// rest (bytes, backlog, other drop causes) is implementation-specific.
func core(s buffer.Stats) buffer.Stats {
	return buffer.Stats{
		Depth: s.Depth, Capacity: s.Capacity, Pushed: s.Pushed, Acked: s.Acked, Dropped: s.Dropped,
		Redelivered: s.Redelivered, OldestEdgeTime: s.OldestEdgeTime, DroppedFull: s.DroppedFull,
	}
}

// stallLimit is how long a test waits without any progress before it calls
// a buffer blocked. It bounds a deadlock, never a speed.
const stallLimit = time.Minute

// waitProgress waits for done while progress() keeps moving; it returns
// false when progress() stood still for limit.
func waitProgress(done <-chan struct{}, progress func() uint64, limit time.Duration) bool {
	tick := time.NewTicker(limit / 60)
	defer tick.Stop()
	last, since := progress(), time.Now()
	for {
		select {
		case <-done:
			return true
		case <-tick.C:
			if p := progress(); p != last {
				last, since = p, time.Now()
			} else if time.Since(since) >= limit {
				return false
			}
		}
	}
}
