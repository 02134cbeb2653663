package cmdproof

import "context"

// Lanes queues received commands for the one worker that handles them, in
// two bounded lanes: messages whose proof verified on arrival, and the
// rest. The worker always takes a proven message first, so a flood of
// unsigned or forged messages — which anyone who can publish on the topic
// can produce at will — fills only its own lane and never delays an
// operator's signed command. Verifying on arrival costs one HMAC (about
// 10 µs); the worker verifies again, with freshness and replay checks.
type Lanes[T any] struct {
	proven, unproven chan T
}

// NewLanes makes both lanes hold size messages each.
func NewLanes[T any](size int) *Lanes[T] {
	return &Lanes[T]{proven: make(chan T, size), unproven: make(chan T, size)}
}

// Offer queues m in its lane without blocking; false when that lane is
// full (the caller refuses or drops it).
func (l *Lanes[T]) Offer(proven bool, m T) bool {
	lane := l.unproven
	if proven {
		lane = l.proven
	}
	select {
	case lane <- m:
		return true
	default:
		return false
	}
}

// Next waits for a message, proven ones first; false when ctx ends.
func (l *Lanes[T]) Next(ctx context.Context) (T, bool) {
	select {
	case m := <-l.proven:
		return m, true
	default:
	}
	select {
	case <-ctx.Done():
		var zero T
		return zero, false
	case m := <-l.proven:
		return m, true
	case m := <-l.unproven:
		return m, true
	}
}

// Work hands every message to handle, proven ones first, one at a time,
// until ctx ends: the body of a command channel's worker goroutine.
func (l *Lanes[T]) Work(ctx context.Context, handle func(T)) {
	for {
		m, ok := l.Next(ctx)
		if !ok {
			return
		}
		handle(m)
	}
}
