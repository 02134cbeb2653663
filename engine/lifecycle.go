package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/weir-edge/weir/pipeline"
)

// runState is what Run shares with Apply: the contexts and wait groups
// of the running components, so that components Apply adds are run, and
// shut down, exactly like those Run started. It keeps Run's context, the
// one context the engine stores: components Apply adds must end with Run.
type runState struct {
	ctx     context.Context // Run's: ends at shutdown; sources run under it
	sinkCtx context.Context // sinks run under it; cancelled at the drain deadline
	srcWG   sync.WaitGroup
	sinkWG  sync.WaitGroup
	tickWG  sync.WaitGroup
	ticking bool
	// stopping is set (under graphMu, with applyMu held) when shutdown
	// begins: Apply refuses from then on.
	stopping bool
}

// startSink runs s's worker under the run's sink context. Called with
// graphMu held, before Run's shutdown began.
func (e *Engine) startSink(s *sinkRunner) {
	rs := e.run
	ctx, abort := context.WithCancel(rs.sinkCtx)
	s.connMu.Lock()
	s.abort = abort
	s.connMu.Unlock()
	rs.sinkWG.Add(1)
	go func() {
		defer rs.sinkWG.Done()
		defer close(s.done)
		defer abort()
		s.run(ctx)
	}()
}

// startSource runs s under a context of its own, derived from Run's, so
// that Apply can stop it alone. Called with graphMu held.
func (e *Engine) startSource(s *sourceRunner) {
	rs := e.run
	ctx, cancel := context.WithCancel(rs.ctx)
	s.cancel = cancel
	rs.srcWG.Add(1)
	go func() {
		defer rs.srcWG.Done()
		defer close(s.done)
		defer cancel()
		s.run(ctx)
	}()
}

// startTickerLocked starts the flush ticker if the chain has a Flusher and
// it does not run yet. Called with graphMu held.
func (e *Engine) startTickerLocked() {
	rs := e.run
	if rs.ticking || e.opts.TickInterval < 0 || !hasFlushers(e.procs) {
		return
	}
	rs.ticking = true
	rs.tickWG.Add(1)
	go func() {
		defer rs.tickWG.Done()
		e.runTicker(rs.ctx)
	}()
}

// closeAndRelease closes the sink, records it stopped and releases its
// buffer and dead-letter store (unless release is false: their new owner
// keeps them). Called once its worker stopped.
func (s *sinkRunner) closeAndRelease(ctx context.Context, release bool) []error {
	var errs []error
	if err := s.spec.Sink.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close sink %s: %w", s.spec.Name, err))
	}
	s.stop()
	if !release {
		return errs
	}
	// A durable buffer keeps its store open after Close so the drain can
	// read it; release it now that nothing reads any more.
	if r, ok := s.spec.Buffer.(pipeline.Releaser); ok {
		if err := r.Release(); err != nil {
			errs = append(errs, fmt.Errorf("release buffer of sink %s: %w", s.spec.Name, err))
		}
	}
	if r, ok := s.spec.DeadLetters.(pipeline.Releaser); ok {
		if err := r.Release(); err != nil {
			errs = append(errs, fmt.Errorf("release dead letters of sink %s: %w", s.spec.Name, err))
		}
	}
	return errs
}

func hasFlushers(procs []pipeline.Processor) bool {
	for _, p := range procs {
		if _, ok := p.(pipeline.Flusher); ok {
			return true
		}
	}
	return false
}
