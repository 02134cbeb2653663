package audit

import (
	"log/slog"
	"time"

	"github.com/weir-edge/weir/security"
)

// Unavailable returns a Log that refuses every entry with cause: what the
// gateway runs with when Open fails (a trail that no longer reaches its
// checkpoint, a bad newest entry, a checkpoint file not signed by the
// node, a file that cannot be opened). A broken trail must stop writes to
// devices — the write gate refuses every attempt while Err is not nil —
// but not the collection of data: a dead disk or a tampered file degrades
// one component, not the process. Nothing is ever appended to the
// tampered trail; the operator looks (weir audit verify), moves the
// checkpoint file or the trail aside, and restarts.
//
// It logs an error and raises an AuditProblem (to o.Events) saying what
// happened and what to do; Status reports the trail failed with cause.
func Unavailable(path string, cause error, o Options) *Log {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	l := &Log{path: path, log: log, now: now, last: Genesis, err: cause}
	l.cp.events = o.Events
	if l.cp.events == nil {
		l.cp.events = security.Discard
	}
	l.problem("the audit trail could not be opened, so every write to a device is refused until it is fixed and weir restarted (data collection goes on): " + cause.Error())
	return l
}
