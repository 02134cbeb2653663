package buffer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

func TestNewMemoryDefaults(t *testing.T) {
	tests := []struct {
		name         string
		capacity     int
		policy       Policy
		wantCapacity int
		wantHeld     []int // after pushing 1, 2, 3
		wantDropped  uint64
	}{
		{"zero capacity is one", 0, DropOldest, 1, []int{3}, 2},
		{"negative capacity is one", -5, DropNewest, 1, []int{1}, 2},
		{"empty policy is drop_oldest", 2, "", 2, []int{2, 3}, 1},
		// Validate rejects unknown policies; should one slip through, the
		// buffer must still make progress rather than spin holding its lock.
		{"unknown policy acts as drop_oldest", 2, "bogus", 2, []int{2, 3}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory(tt.capacity, tt.policy)
			defer m.Close()
			done := make(chan error, 1)
			go func() { done <- m.Push(context.Background(), mk(1, 2, 3)) }()
			if err := waitErr(t, done); err != nil {
				t.Fatalf("Push = %v", err)
			}
			st := m.Stats()
			if st.Capacity != tt.wantCapacity || st.Dropped != tt.wantDropped {
				t.Fatalf("stats = %+v, want capacity=%d dropped=%d", st, tt.wantCapacity, tt.wantDropped)
			}
			if got := drain(t, m); !slices.Equal(got, tt.wantHeld) {
				t.Fatalf("held %v, want %v", got, tt.wantHeld)
			}
		})
	}
}

func TestMemoryNextMaxBelowOne(t *testing.T) {
	for _, max := range []int{0, -1} {
		m := NewMemory(4, DropOldest)
		push(t, m, mk(1, 2))
		if got := next(t, m, max); !slices.Equal(ids(got), []int{1}) {
			t.Fatalf("Next(max=%d) = %v, want [1]", max, ids(got))
		}
		m.Close()
	}
}

// Acked slots must not pin strings and arrays of samples long gone.
func TestMemoryAckReleasesReferences(t *testing.T) {
	m := NewMemory(4, DropOldest)
	defer m.Close()
	s := mk(1, 2, 3)
	s[0].Value = model.Array([]model.Value{model.Int(1)})
	push(t, m, s)
	ack(t, m, next(t, m, 2))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range 2 {
		if m.ring[i].Path != "" || m.ring[i].Value.Elems() != nil {
			t.Fatalf("ring[%d] still holds %+v after Ack", i, m.ring[i])
		}
	}
	if m.ring[2].Path == "" {
		t.Fatal("ring[2] cleared though not acked")
	}
}

// The ring wraps many times; positions keep growing and indexing stays right.
func TestMemoryWraps(t *testing.T) {
	m := NewMemory(5, Block)
	defer m.Close()
	var want, got []int
	for i := 1; i <= 200; i += 3 {
		push(t, m, mk(i, i+1, i+2))
		want = append(want, i, i+1, i+2)
		for m.Stats().Depth > 1 {
			b := next(t, m, 2)
			got = append(got, ids(b)...)
			ack(t, m, b)
		}
	}
	got = append(got, drain(t, m)...)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d samples out of order or lost", len(got))
	}
}

// A cancelled Block Push leaves no goroutine behind (goleak checks at exit)
// and does not disturb a later waiter.
func TestMemoryBlockManyWaiters(t *testing.T) {
	m := NewMemory(1, Block)
	defer m.Close()
	push(t, m, mk(0))
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 3)
	for i := range 3 {
		go func() { cancelled <- m.Push(ctx, mk(10+i)) }()
	}
	kept := make(chan error, 1)
	go func() { kept <- m.Push(context.Background(), mk(1)) }()
	stillBlocked(t, kept, "Push into a full block buffer")
	cancel()
	for range 3 {
		select {
		case err := <-cancelled:
			if err != context.Canceled {
				t.Fatalf("cancelled Push = %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("cancelled Push still blocked")
		}
	}
	stillBlocked(t, kept, "Push whose ctx is alive")
	ack(t, m, next(t, m, 1))
	if err := waitErr(t, kept); err != nil {
		t.Fatalf("Push = %v", err)
	}
	if got := drain(t, m); !slices.Equal(got, []int{1}) {
		t.Fatalf("held %v, want [1]", got)
	}
}

func BenchmarkMemoryPushNextAck(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		for _, p := range []Policy{DropOldest, Block} {
			b.Run(string(p)+"/batch="+itoa(size), func(b *testing.B) {
				m := NewMemory(4*size, p)
				defer m.Close()
				batch := mk(span(1, size)...)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := m.Push(ctx, batch); err != nil {
						b.Fatal(err)
					}
					got, err := m.Next(ctx, size)
					if err != nil {
						b.Fatal(err)
					}
					if err := m.Ack(got); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/sample")
			})
		}
	}
}

// Many sources pushing into one drop_oldest buffer: the contention case.
func BenchmarkMemoryPushParallel(b *testing.B) {
	m := NewMemory(1<<16, DropOldest)
	defer m.Close()
	b.ReportAllocs()
	b.ResetTimer() // the ring itself is not the cost measured
	b.RunParallel(func(pb *testing.PB) {
		batch := mk(span(1, 10)...)
		ctx := context.Background()
		for pb.Next() {
			if err := m.Push(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return string(buf[i:])
}
