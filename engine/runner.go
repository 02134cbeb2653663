package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/internal/latency"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// health is the state every runner tracks about its component.
type health struct {
	mu        sync.Mutex
	state     string
	lastErr   string
	lastErrAt time.Time
	// ownErr is the last error the component reported itself and ownErrAt
	// when the engine first saw it, for components that report no time.
	ownErr   string
	ownErrAt time.Time
}

func (h *health) setState(state string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state = state
	if err != nil {
		h.lastErr = err.Error()
		h.lastErrAt = time.Now()
	}
}

// stop records the end of the component's run; a failed component stays
// failed so that /status after shutdown still says why.
func (h *health) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != pipeline.StateFailed {
		h.state = pipeline.StateStopped
	}
}

func (h *health) snapshot() (state, lastErr string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state, h.lastErr, h.lastErrAt
}

// seenOwnError returns when the engine first saw the component report err.
func (h *health) seenOwnError(err string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != h.ownErr {
		h.ownErr, h.ownErrAt = err, time.Now()
	}
	return h.ownErrAt
}

type sourceRunner struct {
	health
	spec     SourceSpec
	engine   *Engine
	log      *slog.Logger
	restarts atomic.Uint64
	cert     certNote
	// cancel stops this source alone (Apply); done is closed when its
	// goroutine returned.
	cancel context.CancelFunc
	done   chan struct{}
}

// run calls Source.Run until ctx is done, restarting it with backoff when it
// fails or panics.
func (r *sourceRunner) run(ctx context.Context) {
	b := backoff.Backoff{Policy: r.engine.opts.Backoff}
	for {
		r.setState(pipeline.StateRunning, nil)
		started := time.Now()
		err := safeCall("source "+r.spec.Name, func() error { return r.spec.Source.Run(ctx, r.engine) })
		r.engine.noteConnectError(ctx, r.spec.Name, &r.cert, err)
		if errors.Is(err, pipeline.ErrPermanent) {
			// Retrying cannot help until the configuration or the
			// environment changes; say so once, loudly, and stay failed.
			r.setState(pipeline.StateFailed, err)
			r.log.Error("source failed permanently; not restarting until the configuration or environment changes", "err", err)
			return
		}
		if ctx.Err() != nil {
			r.stop()
			return
		}
		if err == nil {
			err = errors.New("source returned before shutdown")
		}
		if time.Since(started) > time.Minute {
			b.Reset() // it ran fine for a while: start the backoff over
		}
		d := b.Next()
		r.restarts.Add(1)
		r.setState(pipeline.StateRetrying, err)
		r.log.Error("source failed; restarting", "err", err, "retry_in", d.Round(time.Millisecond))
		if !backoff.Sleep(ctx, d) {
			r.stop()
			return
		}
	}
}

type sinkRunner struct {
	health
	spec   SinkSpec
	engine *Engine
	log    *slog.Logger
	cert   certNote
	// latency is sample taken → sink confirmed, for live samples only: a
	// replayed sample's age is the outage's length, not a latency.
	latency latency.Histogram
	// gatewayLatency is arrival at the gateway (EdgeTime) → sink
	// confirmed: Weir's own share, without the device's or server's delay
	// before the sample reached it (for an OPC UA notification, the
	// publishing interval and the server's queueing).
	gatewayLatency latency.Histogram

	written     atomic.Uint64
	batches     atomic.Uint64
	writeErrors atomic.Uint64
	connects    atomic.Uint64
	rejected    atomic.Uint64
	rej         rejections    // rejected samples by cause, and the log's rate limit
	historical  atomic.Uint64 // replayed samples delivered

	// connMu guards connected against abortIfNotConnected, so a sink
	// either counts as connected when the drain begins (and drains) or
	// has its connect attempt cancelled (and holds nothing up).
	connMu    sync.Mutex
	connected bool
	abort     context.CancelFunc // cancels the context run was given

	done chan struct{} // closed when the worker goroutine returned
	// pending counts durability waits on this sink's buffer not yet
	// awaited (see push); shared with the successor that takes the
	// buffer over (Change.KeepBuffers). Apply releases a removed buffer
	// only after.
	pending *sync.WaitGroup
	// removing is set when Apply removes the sink and closes its buffer,
	// so that a push blocked on it (policy block, full) returns and the
	// pushes after it skip it.
	removing atomic.Bool
	// routed is the scratch batch the sink's route fills in each push
	// turn (only the turn's holder touches it).
	routed []model.Sample
}

// isConnected reports whether the last Connect succeeded and no Write has
// reported the connection lost since.
func (r *sinkRunner) isConnected() bool {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	return r.connected
}

// setConnected records the connection state; it reports false, leaving
// the sink disconnected, when shutdown already gave up on it (ctx done).
func (r *sinkRunner) setConnected(ctx context.Context, c bool) bool {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if c && ctx.Err() != nil {
		return false
	}
	r.connected = c
	return true
}

// abortIfNotConnected is called when the drain begins: a sink that is not
// connected then (it never connected, failed, or is retrying its
// connection) cannot deliver anything before the deadline with any
// certainty, so its connect attempt or backoff wait is cancelled instead
// of holding shutdown for the whole drain timeout. Its samples stay in its
// buffer (durable buffers keep them for the next run).
func (r *sinkRunner) abortIfNotConnected() bool {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.connected || r.abort == nil {
		return false
	}
	r.abort()
	return true
}

// run connects the sink and feeds it batches from its buffer until the
// buffer is closed and empty, or ctx is cancelled (drain deadline).
func (r *sinkRunner) run(ctx context.Context) {
	b := backoff.Backoff{Policy: r.engine.opts.Backoff}
	for {
		if !r.isConnected() {
			if r.engine.draining.Load() {
				// Not connected while draining: don't hold shutdown; what
				// is buffered stays there (see abortIfNotConnected).
				return
			}
			r.setState(pipeline.StateConnecting, nil)
			err := safeCall("sink "+r.spec.Name+" connect", func() error { return r.spec.Sink.Connect(ctx) })
			if err != nil {
				r.engine.noteConnectError(ctx, r.spec.Name, &r.cert, err)
				if errors.Is(err, pipeline.ErrPermanent) {
					// Retrying cannot help; the buffer keeps the samples
					// until a restart or a new configuration.
					r.setState(pipeline.StateFailed, err)
					r.log.Error("sink failed permanently; not reconnecting until the configuration or environment changes", "err", err)
					return
				}
				if ctx.Err() != nil {
					return
				}
				d := b.Next()
				r.setState(pipeline.StateRetrying, err)
				r.log.Warn("sink connect failed", "err", err, "retry_in", d.Round(time.Millisecond))
				if !backoff.Sleep(ctx, d) {
					return
				}
				continue
			}
			if !r.setConnected(ctx, true) {
				return // shutdown gave up on this sink meanwhile
			}
			r.connects.Add(1)
			b.Reset()
			r.setState(pipeline.StateRunning, nil)
			r.log.Info("sink connected")
		}
		batch, err := r.spec.Buffer.Next(ctx, r.spec.BatchSize)
		if err != nil {
			if !errors.Is(err, buffer.ErrClosed) && ctx.Err() == nil {
				r.log.Error("sink buffer failed", "err", err)
			}
			return
		}
		err = safeCall("sink "+r.spec.Name+" write", func() error { return r.spec.Sink.Write(ctx, batch.Samples) })
		if err == nil {
			r.confirm(batch)
			if b.Attempt() > 0 {
				b.Reset()
				r.setState(pipeline.StateRunning, nil)
			}
			continue
		}
		r.writeErrors.Add(1)
		delivered := 0
		var partial *pipeline.PartialWriteError
		if errors.As(err, &partial) && partial.Delivered > 0 && partial.Delivered < batch.Len() {
			delivered = partial.Delivered
			r.confirm(batch.Prefix(delivered))
		}
		if errors.Is(err, pipeline.ErrRejected) {
			// The destination refuses these samples for good; retrying
			// would block the sink forever. Dead-letter them and go on.
			r.handleRejected(ctx, batch, delivered, err)
			if b.Attempt() > 0 {
				b.Reset()
			}
			continue
		}
		r.spec.Buffer.Nack(batch)
		if errors.Is(err, pipeline.ErrDisconnected) {
			r.setConnected(ctx, false)
		}
		if ctx.Err() != nil {
			return
		}
		d := b.Next()
		var ra pipeline.RetryHinter
		if errors.As(err, &ra) && ra.RetryAfter() > d {
			d = min(ra.RetryAfter(), maxRetryAfter)
		}
		r.setState(pipeline.StateRetrying, err)
		r.log.Warn("sink write failed; batch kept for retry", "err", err, "samples", batch.Len(), "retry_in", d.Round(time.Millisecond))
		if !backoff.Sleep(ctx, d) {
			return
		}
	}
}

// maxRetryAfter caps a destination's request to wait before retrying.
const maxRetryAfter = 5 * time.Minute

// confirm records a delivered batch: latency per sample, counters, Ack.
func (r *sinkRunner) confirm(batch buffer.Batch) { r.confirmExcept(batch, nil) }
