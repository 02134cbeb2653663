// Package pipeline defines the contracts between Weir's stages:
//
//	Source --Emit--> processor chain --> per-sink Buffer --> Sink
//
// The engine (package engine) wires them from configuration and owns their
// lifecycle. Components implement these interfaces and never talk to each
// other directly.
//
// Lifecycle of every component: construct from a validated config (no I/O)
// → connect (network; a failure is retried by whoever runs the component,
// with exponential backoff and jitter) → run → close. Close must work after
// a partial start.
package pipeline

import (
	"context"
	"time"

	"github.com/weir-edge/weir/model"
)

// Emitter is where a Source delivers samples.
//
// Emit may be called from many goroutines at once. The pipeline copies what
// it keeps, so the caller may reuse batch as soon as Emit returns. Emit
// blocks only when a sink's buffer applies back-pressure; it returns ctx's
// error if ctx ends first, and the batch then counts as not accepted.
type Emitter interface {
	Emit(ctx context.Context, batch []model.Sample) error
}

// Source produces samples from the plant floor.
//
// Run connects, produces into out until ctx is done, and then returns nil
// having released every connection and goroutine it started. A source that
// talks to several devices keeps them isolated: it reconnects each one on
// its own (with backoff) so that one dead device never delays another.
// A non-nil error from Run means the whole source failed; the engine logs it
// and calls Run again after a backoff delay, unless it wraps ErrPermanent:
// the source is then marked failed and not run again.
type Source interface {
	Run(ctx context.Context, out Emitter) error
}

// Processor transforms batches between sources and sinks.
//
// Process may modify batch in place and returns the samples to pass on,
// usually a prefix of batch (filtering) or batch itself. It must not keep
// batch after returning; it may keep state per tag (deadband, windows). The
// engine calls Process from one goroutine at a time.
type Processor interface {
	Process(batch []model.Sample) []model.Sample
}

// Flusher is implemented by processors that emit on time rather than on
// input: a window's aggregate when the window closes, the heartbeat of a
// report-by-exception filter. The engine calls Flush on its own clock,
// under the same lock as Process (never concurrently with it), appends the
// samples to out and returns it; what it returns gets sequence ids and
// runs through the processors after this one. now comes from the engine's
// clock, so tests drive windows with a fake one.
type Flusher interface {
	Flush(now time.Time, out []model.Sample) []model.Sample
}

// Sink delivers samples to an IT system.
//
// The engine calls Connect until it succeeds (with backoff) or reports
// ErrPermanent (the sink is then marked failed and left alone), then Write with
// one batch at a time, then Close once. Write returns nil only when the
// destination confirmed the whole batch (for MQTT QoS 1, the PUBACK); on an
// error the engine keeps the batch in the sink's buffer and offers it again
// after a backoff delay, so delivery is at-least-once. A sink that loses its
// connection re-establishes it itself or on the next Connect call; the
// engine calls Connect again after Write reports ErrDisconnected. Write must
// not keep batch after returning.
//
// A poison sample — one the destination refuses for good, whatever the
// rest of the batch (a name it cannot carry, a message too large, a broker
// that disconnects over it) — must never make Write fail the same way
// forever: the sink delivers the rest and returns a *RejectedError naming
// the refused samples and their cause, and the engine sets them aside in
// the sink's dead-letter store. Finding the poison may take one failed
// Write (ErrDisconnected) before that, not more.
type Sink interface {
	Connect(ctx context.Context) error
	Write(ctx context.Context, batch []model.Sample) error
	Close(ctx context.Context) error
}

// Status is what a component reports about itself, beyond what the engine
// observes from outside (state, last error, samples in and out). It feeds
// the JSON status endpoint and the Prometheus metrics.
type Status struct {
	Name  string `json:"name"`
	State string `json:"state,omitempty"`
	// LastError is the most recent failure, empty when healthy. It must not
	// contain secrets.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened; zero if the component does
	// not know (the engine then reports when it first saw the error).
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Counters only grow; Gauges go up and down. Keys are snake_case metric
	// names without a unit suffix beyond what they already say
	// ("requests", "poll_overruns", "cycle_seconds"). Every key needs a
	// line in the metric catalogue (api/help.go), which says what it counts
	// for Prometheus' HELP.
	Counters map[string]uint64  `json:"counters,omitempty"`
	Gauges   map[string]float64 `json:"gauges,omitempty"`
	// ChildSums says that the counters and gauges the component reports
	// under the same key as its children are their sums (a Modbus source's
	// over its devices). /status shows both; the metrics export only the
	// children's series, so that nothing is counted twice.
	ChildSums bool `json:"-"`
	// Children are the parts of a component with their own health, such as
	// the devices of a Modbus source.
	Children []Status `json:"children,omitempty"`
}

// StatusReporter is implemented by components that report more than the
// engine can see. Status must be safe to call concurrently with Run/Write.
type StatusReporter interface {
	Status() Status
}

// Component states as reported in Status.State. A component may report a
// finer state of its own while it works (such as "publishing"); starting,
// connecting, retrying, stopping, stopped and failed mean it delivers
// nothing (see IsDown). Failed is final until the process restarts or the
// configuration changes: the component returned ErrPermanent.
const (
	StateStarting   = "starting"
	StateConnecting = "connecting"
	StateRunning    = "running"
	StateRetrying   = "retrying"
	StateStopping   = "stopping"
	StateStopped    = "stopped"
	StateFailed     = "failed"
)

// StateOffline is a part of a component that is not there (a Sparkplug
// edge node after its death certificate); online is its opposite.
const StateOffline = "offline"

// IsDown reports whether state is one in which a component (or a part of
// one) moves no data. The empty state (a component that reports none) is
// not down.
func IsDown(state string) bool {
	switch state {
	case StateStarting, StateConnecting, StateRetrying, StateStopping, StateStopped, StateFailed, StateOffline:
		return true
	}
	return false
}
