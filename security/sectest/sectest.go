// Package sectest holds the security-event recorder tests share: it keeps
// every event it is given, safe for concurrent use.
package sectest

import (
	"context"
	"sync"

	"github.com/weir-edge/weir/security"
)

// Recorder keeps every event; the zero value is ready.
type Recorder struct {
	mu  sync.Mutex
	evs []security.Event
}

var _ security.Recorder = (*Recorder)(nil)

// Record implements security.Recorder.
func (r *Recorder) Record(_ context.Context, ev security.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

// Events is a copy of what was recorded, in order.
func (r *Recorder) Events() []security.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]security.Event(nil), r.evs...)
}

// Count is the number of events of kind k.
func (r *Recorder) Count(k security.Kind) int {
	n := 0
	for _, ev := range r.Events() {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// Last is the last event of kind k (the zero Event when there is none).
func (r *Recorder) Last(k security.Kind) (last security.Event) {
	for _, ev := range r.Events() {
		if ev.Kind == k {
			last = ev
		}
	}
	return last
}
