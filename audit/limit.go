package audit

import (
	"fmt"
	"net"
	"sort"
	"strings"
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
	// maxSummaryComponents bounds the components a summary names with
	// their counts; the rest are counted as "others".
	maxSummaryComponents = 16
)

// eventWindow counts one source's events in the current window.
type eventWindow struct {
	start  time.Time
	n      int // events in the window
	extra  int // of which not recorded one by one
	sample security.Event
	// Of the extra events: how many each component raised (bounded by
	// maxSummaryComponents, the rest in others), and whether they all
	// name sample's object — so a summary never attributes to one sink
	// or tag what several raised.
	byComponent map[string]int
	others      int
	mixedObject bool
}

// eventLimiter holds the windows; used by Run's goroutine only.
type eventLimiter struct {
	m map[string]*eventWindow
}

// sourceKey groups events by kind, actor, remote host (not port: a
// client reconnecting is the same source) and component: events the
// gateway raises itself (flow.egress_denied has no actor or remote) are
// limited per sink, not shared by every sink. Components are configured
// names, so they do not multiply the windows the way addresses could.
func sourceKey(ev security.Event) string {
	host := ev.Remote
	if h, _, err := net.SplitHostPort(ev.Remote); err == nil {
		host = h
	}
	return string(ev.Kind) + "\x00" + ev.Actor + "\x00" + host + "\x00" + ev.Component
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
	if w.extra > 0 && ev.Object != w.sample.Object {
		w.mixedObject = true
	}
	w.extra++
	w.count(ev.Component)
	w.sample = ev
	if key == overflowSource {
		w.sample.Actor, w.sample.Remote = "(many sources)", ""
	}
	return false
}

func (w *eventWindow) count(component string) {
	if component == "" {
		return
	}
	if w.byComponent == nil {
		w.byComponent = map[string]int{}
	}
	if _, ok := w.byComponent[component]; !ok && len(w.byComponent) >= maxSummaryComponents {
		w.others++
		return
	}
	w.byComponent[component]++
}

// summaryDue is one window's summary.
type summaryDue struct {
	start  time.Time
	n      int
	sample security.Event
	// components is "cloud 13, plant 4" (most first), "" when the events
	// named none; several says more than one component raised them.
	components string
	several    bool
	// mixedObject: the events named different objects (tags, paths).
	mixedObject bool
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
			out = append(out, summaryDue{start: w.start, n: w.extra, sample: w.sample, components: w.components(),
				several: len(w.byComponent)+min(w.others, 1) > 1, mixedObject: w.mixedObject})
		}
		delete(l.m, k)
	}
	return out
}

// components names the components of the summarised events with their
// counts, most first: "cloud 13, plant 4, others 2".
func (w *eventWindow) components() string {
	type kv struct {
		k string
		n int
	}
	var list []kv
	for k, n := range w.byComponent {
		list = append(list, kv{k, n})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].k < list[j].k
	})
	parts := make([]string, 0, len(list)+1)
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s %d", e.k, e.n))
	}
	if w.others > 0 {
		parts = append(parts, fmt.Sprintf("others %d", w.others))
	}
	return strings.Join(parts, ", ")
}
