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
	"github.com/weir-edge/weir/pipeline"
)

// health is the state every runner tracks about its component.
type health struct {
	mu        sync.Mutex
	state     string
	lastErr   string
	lastErrAt time.Time
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

func (h *health) snapshot() (state, lastErr string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state, h.lastErr, h.lastErrAt
}

type sourceRunner struct {
	health
	spec     SourceSpec
	engine   *Engine
	log      *slog.Logger
	restarts atomic.Uint64
}

// run calls Source.Run until ctx is done, restarting it with backoff when it
// fails or panics.
func (r *sourceRunner) run(ctx context.Context) {
	b := backoff.Backoff{Policy: r.engine.opts.Backoff}
	for {
		r.setState(pipeline.StateRunning, nil)
		started := time.Now()
		err := safeCall("source "+r.spec.Name, func() error { return r.spec.Source.Run(ctx, r.engine) })
		if ctx.Err() != nil {
			r.setState(pipeline.StateStopped, nil)
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
			r.setState(pipeline.StateStopped, nil)
			return
		}
	}
}

type sinkRunner struct {
	health
	spec   SinkSpec
	engine *Engine
	log    *slog.Logger
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
	historical  atomic.Uint64 // replayed samples delivered
}

// run connects the sink and feeds it batches from its buffer until the
// buffer is closed and empty, or ctx is cancelled (drain deadline).
func (r *sinkRunner) run(ctx context.Context) {
	b := backoff.Backoff{Policy: r.engine.opts.Backoff}
	connected := false
	for {
		if !connected {
			if r.engine.draining.Load() && r.spec.Buffer.Stats().Depth == 0 {
				return // nothing left to deliver: don't hold shutdown
			}
			r.setState(pipeline.StateConnecting, nil)
			err := safeCall("sink "+r.spec.Name+" connect", func() error { return r.spec.Sink.Connect(ctx) })
			if err != nil {
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
			connected = true
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
			// The destination refuses this data for good; retrying would
			// block the sink forever. Count, log and move on.
			rest := batch.Samples[delivered:]
			r.rejected.Add(uint64(len(rest)))
			r.setState(pipeline.StateRunning, err)
			r.log.Error("sink rejected samples permanently; dropped", "err", err, "samples", len(rest),
				"first_seq", rest[0].Seq, "last_seq", rest[len(rest)-1].Seq)
			if aerr := r.spec.Buffer.Ack(batch); aerr != nil {
				r.log.Error("sink buffer ack failed", "err", aerr)
			}
			continue
		}
		r.spec.Buffer.Nack(batch)
		if errors.Is(err, pipeline.ErrDisconnected) {
			connected = false
		}
		if ctx.Err() != nil {
			return
		}
		d := b.Next()
		var ra interface{ RetryAfter() time.Duration }
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
func (r *sinkRunner) confirm(batch buffer.Batch) {
	now := r.engine.opts.Now().UnixNano()
	historical := 0
	for i := range batch.Samples {
		if batch.Samples[i].Historical {
			historical++
			continue
		}
		r.latency.Record(time.Duration(now - batch.Samples[i].SourceTime))
		r.gatewayLatency.Record(time.Duration(now - batch.Samples[i].EdgeTime))
	}
	r.historical.Add(uint64(historical))
	if err := r.spec.Buffer.Ack(batch); err != nil {
		r.log.Error("sink buffer ack failed", "err", err)
	}
	r.written.Add(uint64(batch.Len()))
	r.batches.Add(1)
}
