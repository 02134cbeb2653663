package buffer

import (
	"context"
	"sync"

	"github.com/weir-edge/weir/model"
)

// Memory is a bounded in-memory ring buffer. Samples are addressed by
// absolute positions (head ≤ sent ≤ tail) so that dropping the oldest
// samples while a batch is in flight needs no bookkeeping: the in-flight
// copy is already with the sink, and its Ack simply moves head past it.
//
// The ring starts small and doubles up to the capacity, so a generous
// capacity costs memory only while an outage actually fills it.
//
// It loses everything on restart; it is the buffer for sinks where that is
// acceptable, and the reference the durable buffer is tested against.
type Memory struct {
	mu       sync.Mutex
	notEmpty *sync.Cond
	notFull  *sync.Cond
	ring     []model.Sample
	capacity int
	head     uint64 // oldest held
	sent     uint64 // next to hand out
	tail     uint64 // next free
	policy   Policy
	closed   bool
	scratch  []model.Sample
	stats    Stats
}

var _ Buffer = (*Memory)(nil)

// NewMemory returns a buffer holding at most capacity samples.
func NewMemory(capacity int, policy Policy) *Memory {
	if capacity < 1 {
		capacity = 1
	}
	if policy == "" {
		policy = DropOldest
	}
	m := &Memory{ring: make([]model.Sample, min(capacity, initialRing)), capacity: capacity, policy: policy}
	m.notEmpty = sync.NewCond(&m.mu)
	m.notFull = sync.NewCond(&m.mu)
	m.stats.Capacity = capacity
	return m
}

func (m *Memory) len() int { return int(m.tail - m.head) }

// Push implements Buffer.
func (m *Memory) Push(ctx context.Context, samples []model.Sample) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	capacity := m.capacity
	for len(samples) > 0 {
		if need := m.len() + len(samples); need > len(m.ring) && len(m.ring) < capacity {
			m.grow(need)
		}
		free := capacity - m.len()
		if free == 0 {
			switch m.policy {
			case DropNewest:
				m.stats.Dropped += uint64(len(samples))
				m.stats.DroppedFull += uint64(len(samples))
				return nil
			case Block:
				if err := m.waitNotFull(ctx); err != nil {
					return err
				}
				continue
			default:
				// DropOldest, and any policy Validate would have refused:
				// making room is the only choice that cannot spin here
				// forever holding the lock.
				n := min(len(samples), capacity)
				m.dropOldest(n)
				free = n
			}
		}
		n := min(free, len(samples))
		ringLen := uint64(len(m.ring))
		for i := 0; i < n; i++ {
			m.ring[(m.tail+uint64(i))%ringLen] = samples[i]
		}
		m.tail += uint64(n)
		m.stats.Pushed += uint64(n)
		samples = samples[n:]
		m.notEmpty.Signal()
	}
	return nil
}

// initialRing is the ring's starting length, in samples.
const initialRing = 1024

// grow enlarges the ring (doubling, up to capacity) to hold at least need
// samples. Positions are absolute, so each held sample moves to its
// position modulo the new length.
func (m *Memory) grow(need int) {
	n := len(m.ring)
	for n < need && n < m.capacity {
		n *= 2
	}
	n = min(n, m.capacity)
	ring := make([]model.Sample, n)
	old := uint64(len(m.ring))
	for p := m.head; p < m.tail; p++ {
		ring[p%uint64(n)] = m.ring[p%old]
	}
	m.ring = ring
}

// dropOldest discards n samples from the head, including in-flight ones.
func (m *Memory) dropOldest(n int) {
	m.head += uint64(n)
	if m.sent < m.head {
		m.sent = m.head
	}
	m.stats.Dropped += uint64(n)
	m.stats.DroppedFull += uint64(n)
}

// waitNotFull waits on notFull until signalled, closed or ctx done. A
// goroutine wakes the cond on ctx cancellation; it ends when the wait ends.
func (m *Memory) waitNotFull(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		m.notFull.Broadcast()
		m.mu.Unlock()
	})
	defer stop()
	m.notFull.Wait()
	if m.closed {
		return ErrClosed
	}
	return ctx.Err()
}

// Next implements Buffer.
func (m *Memory) Next(ctx context.Context, max int) (Batch, error) {
	if max < 1 {
		max = 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.sent == m.tail {
		if m.closed {
			return Batch{}, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return Batch{}, err
		}
		stop := context.AfterFunc(ctx, func() {
			m.mu.Lock()
			m.notEmpty.Broadcast()
			m.mu.Unlock()
		})
		m.notEmpty.Wait()
		stop()
	}
	n := min(int(m.tail-m.sent), max)
	if cap(m.scratch) < n {
		m.scratch = make([]model.Sample, n, max)
	}
	out := m.scratch[:n]
	capacity := uint64(len(m.ring))
	for i := range out {
		out[i] = m.ring[(m.sent+uint64(i))%capacity]
	}
	b := Batch{Samples: out, first: m.sent, end: m.sent + uint64(n)}
	m.sent = b.end
	return b, nil
}

// Ack implements Buffer.
func (m *Memory) Ack(b Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.end > m.head {
		// Samples of b dropped meanwhile were counted as dropped; do not
		// count them as acked too.
		m.stats.Acked += b.end - max(b.first, m.head)
		// Clear references so strings and arrays can be collected.
		capacity := uint64(len(m.ring))
		for p := m.head; p < b.end; p++ {
			m.ring[p%capacity] = model.Sample{}
		}
		m.head = b.end
		m.notFull.Broadcast()
	}
	return nil
}

// Nack implements Buffer.
func (m *Memory) Nack(b Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	from := max(b.first, m.head)
	if from < m.sent {
		m.stats.Redelivered += m.sent - from
		m.sent = from
	}
}

// Stats implements Buffer.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Depth = m.len()
	if s.Depth > 0 {
		s.OldestEdgeTime = m.ring[m.head%uint64(len(m.ring))].EdgeTime
	}
	return s
}

// Close wakes every waiter; later Pushes fail with ErrClosed. Next still
// hands out the samples held, then fails with ErrClosed; whatever is not
// taken is lost with the process (memory only).
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.notEmpty.Broadcast()
	m.notFull.Broadcast()
	return nil
}
