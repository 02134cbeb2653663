package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/security"
)

// EventRecorder makes the trail a security.Recorder: every security-
// relevant action that is not a write (login ok or failed, token created
// or revoked, access denied, alarm command, configuration applied,
// certificate rejected…) becomes an entry, with its actor, remote
// address, outcome and detail, in the same hash chain as the writes.
//
// Record never blocks: events wait in a bounded queue that Run drains
// into the trail (an append syncs the file, which a request handler must
// not wait for). When the queue is full an event is dropped and counted,
// and Run reports the drops as an AuditProblem to problems — dropping is
// loud, never silent.
//
// Kinds it leaves out: write.* (the write gate appends writes itself,
// with their values) and audit.* (checkpoints and problems are about the
// trail; recording them in it would feed back).
//
// A flood (a password guesser, a client retrying with a revoked token,
// a misrouted sink denied hundreds of tags) must not fill the trail and
// rotate history away: per source — the same kind, actor, remote host
// and component — the first EventBurst events of a minute are entries,
// the further ones are counted and written as one summarising entry when
// the minute has passed (limit.go), which names the components it covers
// with their counts and a component or path only when all were the
// same. The SOC stream (secevents) is not limited: it carries every event.
type EventRecorder struct {
	trail    Appender
	problems security.Recorder
	log      *slog.Logger
	q        chan security.Event
	now      func() time.Time

	dropped  atomic.Uint64
	reported uint64 // drops already reported; Run's goroutine only
	// failing is the last append error reported; the same error again
	// (a trail that stays unavailable) is counted, not reported per event.
	failing    string
	unrecorded atomic.Uint64
	limit      eventLimiter
}

// Appender is what EventRecorder appends to; *Log implements it.
type Appender interface {
	Append(e Entry) (Entry, error)
}

var (
	_ Appender          = (*Log)(nil)
	_ security.Recorder = (*EventRecorder)(nil)
)

// DefaultEventQueue is the queue length NewEventRecorder uses for size 0.
const DefaultEventQueue = 1024

// NewEventRecorder returns a recorder appending to trail; problems (nil:
// Discard) hears about drops. Run must run for events to be written.
func NewEventRecorder(trail Appender, size int, problems security.Recorder, log *slog.Logger) *EventRecorder {
	if size <= 0 {
		size = DefaultEventQueue
	}
	if problems == nil {
		problems = security.Discard
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EventRecorder{trail: trail, problems: problems, log: log, q: make(chan security.Event, size), now: time.Now,
		limit: eventLimiter{m: map[string]*eventWindow{}}}
}

// recorded reports whether the trail takes events of kind k.
func recorded(k security.Kind) bool {
	switch k {
	case security.WriteAllowed, security.WriteDenied, security.AuditCheckpoint, security.AuditProblem:
		return false
	}
	return k != ""
}

// Record queues ev, or drops and counts it when the queue is full.
func (r *EventRecorder) Record(_ context.Context, ev security.Event) {
	if !recorded(ev.Kind) {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	select {
	case r.q <- ev:
	default:
		r.dropped.Add(1)
	}
}

// Dropped counts the events dropped because the queue was full.
func (r *EventRecorder) Dropped() uint64 { return r.dropped.Load() }

// Run appends queued events until ctx ends, then the ones still queued
// and the pending summaries, and returns nil. An append that fails is
// logged and reported; the Log refuses further appends until reopened,
// as for writes.
func (r *EventRecorder) Run(ctx context.Context) error {
	t := time.NewTicker(EventWindow / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case ev := <-r.q:
					r.take(ev)
				default:
					r.reportDrops()
					r.flush(true)
					return nil
				}
			}
		case <-t.C:
			r.flush(false)
		case ev := <-r.q:
			r.take(ev)
			if len(r.q) == 0 {
				r.reportDrops()
			}
		}
	}
}

// take appends ev unless its source is over its burst this window.
func (r *EventRecorder) take(ev security.Event) {
	now := r.now()
	r.flush(false)
	if r.limit.allow(ev, now) {
		r.append(ev)
	}
}

// flush writes the summaries of windows that have passed (all: every
// window with something to summarise).
func (r *EventRecorder) flush(all bool) {
	for _, s := range r.limit.due(r.now(), all) {
		ev := s.sample
		ev.Time = r.now()
		from := "from this source"
		if s.components != "" {
			from += " (" + s.components + ")"
		}
		last := ev.Detail
		if s.several || s.mixedObject {
			// The entry's component and path would name only the last
			// event's: say whose it was in the text and leave them empty
			// rather than attribute every event to one sink or tag.
			last = fmt.Sprintf("component %s, %s: %s", orDash(ev.Component), orDash(ev.Object), ev.Detail)
			if s.several {
				ev.Component = ""
			}
			if s.mixedObject {
				ev.Object = ""
			}
		}
		ev.Detail = fmt.Sprintf("%d further %s events %s refused to the trail since %s (summarised: the trail records at most %d a minute one by one per source; the SOC stream carries every event); the last: %s",
			s.n, ev.Kind, from, s.start.UTC().Format(time.RFC3339), EventBurst, last)
		r.append(ev)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r *EventRecorder) append(ev security.Event) {
	e := Entry{Time: ev.Time, Kind: string(ev.Kind), Caller: ev.Actor, Path: ev.Object, Remote: ev.Remote,
		Component: ev.Component, Outcome: ev.Outcome, Detail: ev.Detail}
	if _, err := r.trail.Append(e); err != nil {
		r.unrecorded.Add(1)
		if err.Error() == r.failing {
			return // reported already: the trail stays unavailable
		}
		r.failing = err.Error()
		r.log.Error("security event not recorded in the audit trail", "kind", ev.Kind, "actor", ev.Actor, "err", err)
		r.problems.Record(context.Background(), security.Event{Time: time.Now(), Kind: security.AuditProblem,
			Severity: security.SeverityError, Component: "audit", Outcome: "failed",
			Detail: fmt.Sprintf("a %s event could not be recorded (further ones failing alike are counted, not reported): %v", ev.Kind, err)})
		return
	}
	r.failing = ""
}

// Unrecorded counts the events the trail refused (Append failed).
func (r *EventRecorder) Unrecorded() uint64 { return r.unrecorded.Load() }

// reportDrops raises one AuditProblem for the drops since the last one.
func (r *EventRecorder) reportDrops() {
	n := r.dropped.Load()
	if n == r.reported {
		return
	}
	r.log.Warn("security events dropped before reaching the audit trail (queue full)", "dropped", n-r.reported, "total", n)
	r.problems.Record(context.Background(), security.Event{Time: time.Now(), Kind: security.AuditProblem,
		Severity: security.SeverityWarning, Component: "audit", Outcome: "failed",
		Detail: fmt.Sprintf("%d security events dropped before reaching the audit trail (queue of %d full)", n-r.reported, cap(r.q))})
	r.reported = n
}
