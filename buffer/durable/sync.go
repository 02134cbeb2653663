package durable

import (
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
)

// syncer is the group commit of fsync: group. Pushes write without a sync,
// then wait for a sync that covers their write. A sync starts as soon as
// every Push in progress has written (nobody else to wait for), or when
// the window has passed since the first write waiting, whichever is first:
// a lone writer is not delayed, concurrent ones share one sync.
type syncer struct {
	db     *pebble.DB
	window time.Duration

	mu      sync.Mutex
	cond    *sync.Cond
	active  int    // Pushes in progress
	waiting int    // of which wrote and wait for a sync
	written uint64 // write generations handed out
	synced  uint64 // generations covered by a completed sync
	err     error  // the last sync's error, for the writers it covered
	stopped bool
	done    chan struct{}
}

func newSyncer(db *pebble.DB, window time.Duration) *syncer {
	s := &syncer{db: db, window: window, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.loop()
	return s
}

func (s *syncer) enter() {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
}

func (s *syncer) exit() {
	s.mu.Lock()
	s.active--
	s.cond.Broadcast()
	s.mu.Unlock()
}

// wrote records a write (call in commit order) and returns its generation.
func (s *syncer) wrote() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written++
	s.waiting++
	s.cond.Broadcast()
	return s.written
}

// wait blocks until a sync covered generation g.
func (s *syncer) wait(g uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.synced < g && !s.stopped {
		s.cond.Wait()
	}
	s.waiting--
	s.cond.Broadcast()
	if s.synced < g {
		return pebble.ErrClosed
	}
	return s.err
}

func (s *syncer) loop() {
	defer close(s.done)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for s.written == s.synced && !s.stopped {
			s.cond.Wait()
		}
		if s.written == s.synced {
			return // stopped with nothing pending
		}
		// Gather: wait while others are still writing, up to the window.
		deadline := time.Now().Add(s.window)
		for s.waiting < s.active && !s.stopped {
			d := time.Until(deadline)
			if d <= 0 {
				break
			}
			t := time.AfterFunc(d, func() {
				s.mu.Lock()
				s.cond.Broadcast()
				s.mu.Unlock()
			})
			s.cond.Wait()
			t.Stop()
		}
		target := s.written
		s.mu.Unlock()
		err := s.db.LogData(nil, pebble.Sync)
		s.mu.Lock()
		s.synced, s.err = target, err
		s.cond.Broadcast()
	}
}

// stop makes a last sync of what is pending and ends the loop.
func (s *syncer) stop() {
	s.mu.Lock()
	s.stopped = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.done
}

// tokens is a token bucket for the backlog's drain rate.
type tokens struct {
	rate, burst float64 // per second; bucket size
	avail       float64
	at          time.Time
}

func (t *tokens) refill(now time.Time) {
	if d := now.Sub(t.at).Seconds(); d > 0 {
		t.avail = min(t.burst, t.avail+d*t.rate)
	}
	t.at = now
}

func (t *tokens) refund(n float64) { t.avail = min(t.burst, t.avail+n) }

// wait is how long until one token is there.
func (t *tokens) wait() time.Duration {
	if t.avail >= 1 || t.rate <= 0 {
		return time.Millisecond
	}
	return time.Duration((1 - t.avail) / t.rate * float64(time.Second))
}

// dropLog logs dropped samples by cause, at most once per dropLogEvery
// per cause, with the count since the last line.
type dropLog struct {
	log     *slog.Logger
	pending map[string]uint64
	last    map[string]time.Time
}

const dropLogEvery = 10 * time.Second

func (d *dropLog) add(cause string, n uint64, now time.Time) {
	if d.pending == nil {
		d.pending, d.last = map[string]uint64{}, map[string]time.Time{}
	}
	d.pending[cause] += n
	if last, ok := d.last[cause]; ok && now.Sub(last) < dropLogEvery && now.After(last) {
		return
	}
	d.log.Warn("buffer dropped samples", "cause", cause, "samples", d.pending[cause])
	d.pending[cause] = 0
	d.last[cause] = now
}
