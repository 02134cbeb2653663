package engine

import (
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
// every earlier ticket was pushed. Only the Emit calls behind
// a blocked push wait; the processors do not.
//
// Waiting costs nothing when there is no contention (the turn is already
// there); a channel is made only for a batch that has to queue, so at most
// one per concurrently emitting goroutine.
type pushOrder struct {
	mu      sync.Mutex
	issued  uint64                   // next ticket to hand out
	next    uint64                   // ticket whose turn it is
	waiting map[uint64]chan struct{} // queued tickets, closed on their turn
	pool    sync.Pool                // of *pushTurn
}

// take copies samples into a pooled turn with the next ticket. Called with
// the engine's lock held, which orders tickets like sequence ids.
func (o *pushOrder) take(samples []model.Sample) *pushTurn {
	t := o.get()
	t.samples = append(t.samples[:0], samples...)
	o.number(t)
	return t
}

// handOff is take without the copy: the turn takes work itself, and
// *scratch (which work may share an array with) gets the turn's old,
// emptied slice instead. For the engine's scratch batch, whose samples
// nobody else holds once the processors returned.
func (o *pushOrder) handOff(work []model.Sample, scratch *[]model.Sample) *pushTurn {
	t := o.get()
	t.samples, *scratch = work, t.samples[:0]
	o.number(t)
	return t
}

func (o *pushOrder) get() *pushTurn {
	if t, ok := o.pool.Get().(*pushTurn); ok {
		return t
	}
	return &pushTurn{}
}

func (o *pushOrder) number(t *pushTurn) {
	o.mu.Lock()
	t.ticket = o.issued
	o.issued++
	o.mu.Unlock()
}

// wait blocks until it is t's turn. It does not give up when the
// caller's context ends: the batch went through the processors already and
// must reach the buffers in order, so it is pushed in its turn, where a
// context that ended only fails a push that has to wait for room. A turn
// is never long unless a predecessor waits for room in a full buffer
// (policy block), and that predecessor returns when its own context ends —
// at shutdown, the same moment.
func (o *pushOrder) wait(t *pushTurn) {
	o.mu.Lock()
	if o.next == t.ticket {
		o.mu.Unlock()
		return
	}
	if o.waiting == nil {
		o.waiting = map[uint64]chan struct{}{}
	}
	ch := make(chan struct{})
	o.waiting[t.ticket] = ch
	o.mu.Unlock()
	<-ch
}

// done ends t's turn (its push finished, successfully or not), wakes the
// next ticket, and releases t.
func (o *pushOrder) done(t *pushTurn) {
	o.mu.Lock()
	o.next++
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
