package auth

import (
	"sync"
	"time"
)

// Bounds of the per-host and per-caller state. When a table is full,
// entries whose window has passed are dropped first; if it is still full
// (a flood from many addresses), an arbitrary entry goes: forgetting a
// host only gives it a fresh window, never access.
const (
	maxTracked = 10_000
	// Failed logins allowed per host in failWindow before backing off.
	failLimit  = 5
	failWindow = time.Minute
	// backoff is how long a host that reached failLimit is answered 429.
	backoff = time.Minute
	// eventLimit is how many events of one kind one key (a host or a
	// caller) produces per eventWindow; the rest are counted and the count
	// rides on the next event.
	eventLimit  = 10
	eventWindow = time.Minute
	// LoginOKEvery is how often a credential's successful use is reported.
	LoginOKEvery = 10 * time.Minute
)

// window counts things per key in fixed windows.
type window struct {
	mu sync.Mutex
	m  map[string]*windowEntry
}

type windowEntry struct {
	start        time.Time
	n            int
	blockedUntil time.Time
	suppressed   int
}

func newWindow() *window { return &window{m: map[string]*windowEntry{}} }

func (w *window) entry(key string, now time.Time, span time.Duration) *windowEntry {
	e, ok := w.m[key]
	if !ok {
		if len(w.m) >= maxTracked {
			w.prune(now, span)
		}
		e = &windowEntry{start: now}
		w.m[key] = e
	}
	if now.Sub(e.start) >= span {
		e.start, e.n = now, 0
	}
	return e
}

func (w *window) prune(now time.Time, span time.Duration) {
	for k, e := range w.m {
		if now.Sub(e.start) >= span && now.After(e.blockedUntil) && e.suppressed == 0 {
			delete(w.m, k)
		}
	}
	for k := range w.m {
		if len(w.m) < maxTracked {
			break
		}
		delete(w.m, k)
	}
}

// blocked reports whether key is backing off at now.
func (w *window) blocked(key string, now time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[key]
	if !ok || !now.Before(e.blockedUntil) {
		return 0, false
	}
	return e.blockedUntil.Sub(now), true
}

// suppress counts an attempt refused unchecked while key backs off; the
// count rides on the next event from key.
func (w *window) suppress(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.m[key]; ok {
		e.suppressed++
	}
}

// fail counts a failure of key; it reports how many attempts were
// suppressed since the last event, and whether key now backs off. Every
// failure is reported: at most failLimit per window get through.
func (w *window) fail(key string, now time.Time) (suppressed int, blocked bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.entry(key, now, failWindow)
	e.n++
	suppressed, e.suppressed = e.suppressed, 0
	if e.n >= failLimit {
		e.blockedUntil = now.Add(backoff)
		e.n = 0
		e.start = now
		blocked = true
	}
	return suppressed, blocked
}

// takeSuppressed returns and clears the count of attempts refused while
// key backed off, so the next event can report them.
func (w *window) takeSuppressed(key string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[key]
	if !ok {
		return 0
	}
	n := e.suppressed
	e.suppressed = 0
	return n
}

// allowEvent reports whether key may produce another event in this
// window, and how many were suppressed before it.
func (w *window) allowEvent(key string, now time.Time) (bool, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.entry(key, now, eventWindow)
	if e.n >= eventLimit {
		e.suppressed++
		return false, 0
	}
	e.n++
	s := e.suppressed
	e.suppressed = 0
	return true, s
}

// once reports whether key was not seen within every (LoginOK dedupe).
type once struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (o *once) first(key string, now time.Time, every time.Duration) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]time.Time{}
	}
	if t, ok := o.m[key]; ok && now.Sub(t) < every {
		return false
	}
	if len(o.m) >= maxTracked {
		for k, t := range o.m {
			if now.Sub(t) >= every || len(o.m) >= maxTracked {
				delete(o.m, k)
			}
		}
	}
	o.m[key] = now
	return true
}

// limiter is a token bucket per caller.
type limiter struct {
	r  rate
	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func (l *limiter) take(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*bucket{}
	}
	b, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxTracked {
			for k, x := range l.m {
				if now.Sub(x.last) >= l.r.per || len(l.m) >= maxTracked {
					delete(l.m, k)
				}
			}
		}
		b = &bucket{tokens: l.r.n, last: now}
		l.m[key] = b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(l.r.n, b.tokens+l.r.n*float64(el)/float64(l.r.per))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
