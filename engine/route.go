package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weir-edge/weir/model"
)

// Routes (package route) sit between the shared chain and each sink's
// buffer: in the push turn, a sink with a route receives what its route
// makes of the batch (selection, class check, its own processors) instead
// of the batch itself. Rules and alarms run in the shared chain, before
// any route, so they see every sample. A sink without a route takes the
// batch as it is, at the cost it always had.

// maxRouteScratch bounds the scratch batch a sink keeps between pushes:
// one burst must not pin a large array for the process's life.
const maxRouteScratch = 64 << 10

// route runs s's route over work into s's scratch batch and numbers the
// samples its chain created. Called in the push turn.
func (e *Engine) route(s *sinkRunner, work []model.Sample) ([]model.Sample, error) {
	out, err := s.spec.Route.Process(work, s.routed[:0])
	e.numberRouted(out)
	s.routed = keepScratch(out)
	return out, err
}

// numberRouted gives sequence ids to samples a route's chain created
// (Seq 0), on the engine's counter: unique with every other id.
func (e *Engine) numberRouted(out []model.Sample) {
	for i := range out {
		if out[i].Seq == 0 {
			out[i].Seq = e.seq.Add(1)
		}
	}
}

func keepScratch(s []model.Sample) []model.Sample {
	if cap(s) > maxRouteScratch {
		return nil
	}
	return s
}

// flushRoutes flushes the time-driven processors of every target's route
// at now and pushes what each emits into that sink's buffer only. Called
// in a push turn (Tick takes one).
func (e *Engine) flushRoutes(ctx context.Context, now time.Time) ([]func() error, error) {
	var waits []func() error
	var errs []error
	for _, s := range e.targets {
		r := s.spec.Route
		if r == nil || !r.HasFlusher() || s.removing.Load() {
			continue
		}
		out, err := r.Flush(now, s.routed[:0])
		if err != nil {
			errs = append(errs, fmt.Errorf("sink %s: %w", s.spec.Name, err))
		}
		e.numberRouted(out)
		s.routed = keepScratch(out)
		wait, err := e.pushTo(ctx, s, out)
		if wait != nil {
			waits = append(waits, wait)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return waits, errors.Join(errs...)
}

// setTargets replaces the sinks push feeds; called in a push turn (or by
// New, before any).
func (e *Engine) setTargets(targets []*sinkRunner) {
	e.targets = targets
	flush := false
	for _, s := range targets {
		if s.spec.Route != nil && s.spec.Route.HasFlusher() {
			flush = true
		}
	}
	e.routeFlush.Store(flush)
}

// routeStatus adds a routed sink's route_* counters to its status
// counters, and returns the status of the route's own processors that
// report one, named as configured ("sink/<name>/<proc>").
func routeStatus(s *sinkRunner, cs *ComponentStatus) []ComponentStatus {
	r := s.spec.Route
	if r == nil {
		return nil
	}
	c := r.Counters()
	cs.Counters["route_in_samples"] = c.In
	cs.Counters["route_filtered_samples"] = c.Filtered
	cs.Counters["route_denied_samples"] = c.Denied
	cs.Counters["route_chain_in_samples"] = c.ChainIn
	cs.Counters["route_chain_out_samples"] = c.ChainOut
	cs.Counters["route_in_bytes"] = c.InBytes
	cs.Counters["route_out_bytes"] = c.OutBytes
	procs, names := r.Processors()
	var out []ComponentStatus
	for i, p := range procs {
		if ps, ok := processorStatus(p, i, names); ok {
			if i >= len(names) || names[i] == "" {
				ps.Name = "sink/" + s.spec.Name + "/" + ps.Name
			}
			out = append(out, ps)
		}
	}
	return out
}
