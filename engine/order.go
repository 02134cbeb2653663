package engine

import (
	"context"
	"sync"

	"github.com/weir-edge/weir/model"
)

// pushTurn is one processed batch waiting for its turn to be pushed into
// the sinks' buffers.
type pushTurn struct {
	samples []model.Sample
	ticket  uint64
}

// pushOrder lets Emit push outside the engine's processing lock while the
// buffers still receive batches in sequence order: a batch takes a ticket
// while the lock is held (so tickets follow sequence ids), and pushes when
// every earlier ticket was pushed or given up. Only the Emit calls behind
// a blocked push wait; the processors do not.
//
// Waiting costs nothing when there is no contention (the turn is already
// there); a channel is made only for a batch that has to queue, so at most
// one per concurrently emitting goroutine.
type pushOrder struct {
	mu        sync.Mutex
	issued    uint64                   // next ticket to hand out
	next      uint64                   // ticket whose turn it is
	waiting   map[uint64]chan struct{} // queued tickets, closed on their turn
	abandoned map[uint64]bool          // tickets given up before their turn
	pool      sync.Pool                // of *pushTurn
}

// take copies samples into a pooled turn with the next ticket. Called with
// the engine's lock held, which orders tickets like sequence ids.
func (o *pushOrder) take(samples []model.Sample) *pushTurn {
	t, _ := o.pool.Get().(*pushTurn)
	if t == nil {
		t = &pushTurn{}
	}
	t.samples = append(t.samples[:0], samples...)
	o.mu.Lock()
	t.ticket = o.issued
	o.issued++
	o.mu.Unlock()
	return t
}

// wait blocks until it is t's turn. If ctx ends first, t gives its turn up
// (later tickets skip it), t is released, and ctx's error is returned.
func (o *pushOrder) wait(ctx context.Context, t *pushTurn) error {
	o.mu.Lock()
	if o.next == t.ticket {
		o.mu.Unlock()
		return nil
	}
	if o.waiting == nil {
		o.waiting = map[uint64]chan struct{}{}
	}
	ch := make(chan struct{})
	o.waiting[t.ticket] = ch
	o.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	o.mu.Lock()
	if o.next == t.ticket { // the turn came as ctx ended: take it
		o.mu.Unlock()
		return nil
	}
	delete(o.waiting, t.ticket)
	if o.abandoned == nil {
		o.abandoned = map[uint64]bool{}
	}
	o.abandoned[t.ticket] = true
	o.mu.Unlock()
	o.release(t)
	return ctx.Err()
}

// done ends t's turn (its push finished, successfully or not), wakes the
// next ticket, and releases t.
func (o *pushOrder) done(t *pushTurn) {
	o.mu.Lock()
	o.next++
	for o.abandoned[o.next] {
		delete(o.abandoned, o.next)
		o.next++
	}
	if ch, ok := o.waiting[o.next]; ok {
		delete(o.waiting, o.next)
		close(ch)
	}
	o.mu.Unlock()
	o.release(t)
}

// release returns t to the pool, without references to the samples'
// strings so they can be collected.
func (o *pushOrder) release(t *pushTurn) {
	clear(t.samples)
	t.samples = t.samples[:0]
	o.pool.Put(t)
}
