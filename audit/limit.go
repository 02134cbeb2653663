package audit

import (
	"net"
	"time"

	"github.com/weir-edge/weir/security"
)

// The bound on how many security events of one source become entries:
// EventBurst per EventWindow, the rest summarised.
const (
	EventBurst  = 20
	EventWindow = time.Minute
	// maxEventSources bounds the windows kept; sources beyond it share
	// one (a flood from many addresses is then summarised together).
	maxEventSources = 1000
)

// eventWindow counts one source's events in the current window.
type eventWindow struct {
	start  time.Time
	n      int // events in the window
	extra  int // of which not recorded one by one
	sample security.Event
}

// eventLimiter holds the windows; used by Run's goroutine only.
type eventLimiter struct {
	m map[string]*eventWindow
}

// sourceKey groups events by kind, actor and remote host (not port: a
// client reconnecting is the same source).
func sourceKey(ev security.Event) string {
	host := ev.Remote
	if h, _, err := net.SplitHostPort(ev.Remote); err == nil {
		host = h
	}
	return string(ev.Kind) + "\x00" + ev.Actor + "\x00" + host
}

const overflowSource = "\x00overflow"

// allow counts ev and reports whether it is recorded one by one.
func (l *eventLimiter) allow(ev security.Event, now time.Time) bool {
	key := sourceKey(ev)
	w, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxEventSources {
			key = overflowSource
			w = l.m[key]
		}
		if w == nil {
			w = &eventWindow{start: now}
			l.m[key] = w
		}
	}
	w.n++
	if w.n <= EventBurst {
		return true
	}
	w.extra++
	w.sample = ev
	if key == overflowSource {
		w.sample.Actor, w.sample.Remote = "(many sources)", ""
	}
	return false
}

// summaryDue is one window's summary.
type summaryDue struct {
	start  time.Time
	n      int
	sample security.Event
}

// due ends the windows that have passed by now (all: every window) and
// returns the summaries of those with events not recorded one by one.
func (l *eventLimiter) due(now time.Time, all bool) []summaryDue {
	var out []summaryDue
	for k, w := range l.m {
		if !all && now.Sub(w.start) < EventWindow {
			continue
		}
		if w.extra > 0 {
			out = append(out, summaryDue{start: w.start, n: w.extra, sample: w.sample})
		}
		delete(l.m, k)
	}
	return out
}
