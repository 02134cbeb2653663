package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/route"
)

// Change is a live reconfiguration of a running engine (hot reload): the
// gateway computes it from the difference between the running and the new
// configuration and builds only the components that are new or changed.
// Everything not named keeps running untouched: its connection, session,
// subscriptions and buffer.
//
// A changed component is removed and added under the same name in one
// Change. A removed sink is closed and its buffer released; a durable
// buffer stays on disk (weir buffer purge removes it).
type Change struct {
	RemoveSources []string
	AddSources    []SourceSpec
	RemoveSinks   []string
	// AddSinks are started like Run starts sinks. Each has a Buffer, or
	// an OpenBuffer that Apply calls once the removed sinks are released,
	// or is named in KeepBuffers.
	AddSinks []SinkSpec
	// KeepBuffers names sinks that are both removed and added: the new
	// sink takes over the old one's buffer and dead-letter store with
	// what they hold (a memory buffer too), and no sample pushed
	// meanwhile misses it. For a changed sink whose buffer settings did
	// not change. Their AddSinks spec has neither Buffer nor OpenBuffer.
	KeepBuffers []string
	// ReplaceProcessors swaps the whole processor chain for Processors
	// (named by ProcessorNames) between two batches.
	ReplaceProcessors bool
	Processors        []pipeline.Processor
	ProcessorNames    []string
	// Classification, when set, is a new classification for every sink's
	// route, applied at the same cut as the rest of the change (no sink
	// restarts for it): every batch before the cut was checked against
	// the old classes, every batch after it against the new ones. A
	// Classification holding a nil Classifier classifies every tag as
	// route.DefaultClass.
	Classification *Classification
}

// Classification carries a new classifier through a Change.
type Classification struct {
	Classifier *route.Classifier
}

// Empty reports whether c changes nothing.
func (c Change) Empty() bool {
	return len(c.RemoveSources) == 0 && len(c.AddSources) == 0 && len(c.RemoveSinks) == 0 &&
		len(c.AddSinks) == 0 && !c.ReplaceProcessors && c.Classification == nil
}

// ErrNotRunning is returned by Apply outside Run.
var ErrNotRunning = errors.New("engine: not running")

// Running reports whether Run has started and not begun its shutdown:
// whether Apply may be called.
func (e *Engine) Running() bool {
	e.graphMu.RLock()
	defer e.graphMu.RUnlock()
	return e.run != nil && !e.run.stopping && e.run.ctx.Err() == nil
}

// Apply changes the running graph. ctx is checked on entry only: every
// wait after that is bounded (the drain timeout, as at shutdown), and a
// change half done is not left half done. Contract (hot reload):
//   - it may be called only while Run runs (else ErrNotRunning); calls are
//     serialised; it blocks until removed components have stopped and
//     added ones have been started (a sink's worker connects in the
//     background, as at Run);
//   - order: removed sources stop first (waited for up to the drain
//     timeout); a sink in KeepBuffers changes worker on its buffer, which
//     is fed all along; the buffers of the other removed sinks are closed,
//     so that a push waiting for room in one (policy block, sink down)
//     returns instead of holding the change up; then, between two pushes,
//     the processor chain and the set of sinks fed change at one cut:
//     every batch before it went through the old chain into the old
//     sinks, every batch after it through the new chain into the new
//     sinks; removed sinks then stop (a Write in flight is cancelled and
//     its batch kept), are closed and their buffers released; added
//     sources start last;
//   - nothing accepted is lost: samples already in a removed sink's
//     durable buffer stay there (on disk, for weir buffer purge or a later
//     configuration that names the sink again); a removed source stops
//     after its last Emit returns; a sink in KeepBuffers hands its buffer
//     on;
//   - on a malformed Change (unknown or duplicate names, missing parts)
//     nothing was changed: everything is checked, and the buffers of
//     newly named sinks opened, before anything stops. The one error left
//     after that point is an OpenBuffer failing for a sink the Change
//     replaces: the rest of the Change stands, that sink is missing, and
//     the error says so;
//   - replaced processors that have Close or Release are closed once no
//     batch can reach them; processors present in both chains (the same
//     value) are kept.
func (e *Engine) Apply(ctx context.Context, c Change) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	e.graphMu.RLock()
	rs := e.run
	running := rs != nil && !rs.stopping && rs.ctx.Err() == nil
	var err error
	if running {
		err = e.check(c)
	}
	e.graphMu.RUnlock()
	if !running {
		return ErrNotRunning
	}
	if err != nil {
		return err
	}
	if c.Empty() {
		return nil
	}
	// Open the buffers of sinks that replace nothing now, so that a
	// failure still changes nothing.
	removedSink := setOf(c.RemoveSinks)
	keep := setOf(c.KeepBuffers)
	adds := slices.Clone(c.AddSinks)
	var opened []SinkSpec
	for i := range adds {
		a := &adds[i]
		if a.Buffer != nil || keep[a.Name] || removedSink[a.Name] {
			continue
		}
		if err := openBuffer(a); err != nil {
			for _, b := range opened {
				releaseSpec(b)
			}
			return err
		}
		opened = append(opened, *a)
	}

	e.stopSources(c.RemoveSources)
	errs := e.swap(c, adds, removedSink, keep)

	e.graphMu.Lock()
	for _, s := range c.AddSources {
		r := e.newSourceRunner(s)
		e.sources = append(slices.Clip(e.sources), r)
		e.startSource(r)
	}
	e.startTickerLocked()
	e.graphMu.Unlock()
	e.log.Info("engine reconfigured",
		"sources_removed", c.RemoveSources, "sources_added", specNames(c.AddSources),
		"sinks_removed", c.RemoveSinks, "sinks_added", sinkNames(c.AddSinks),
		"processors_replaced", c.ReplaceProcessors, "classification_changed", c.Classification != nil)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("engine: change applied except: %w", err)
	}
	return nil
}

// check validates c against the running graph. Called with graphMu held.
func (e *Engine) check(c Change) error {
	var errs []error
	have := map[string]bool{}
	for _, s := range e.sources {
		have["source/"+s.spec.Name] = true
	}
	for _, s := range e.sinks {
		have["sink/"+s.spec.Name] = true
	}
	removed := map[string]bool{}
	for kind, names := range map[string][]string{"source": c.RemoveSources, "sink": c.RemoveSinks} {
		for _, n := range names {
			switch k := kind + "/" + n; {
			case !have[k]:
				errs = append(errs, fmt.Errorf("engine: remove %s %q: no such %s", kind, n, kind))
			case removed[k]:
				errs = append(errs, fmt.Errorf("engine: remove %s %q: named twice", kind, n))
			default:
				removed[k] = true
			}
		}
	}
	added := map[string]bool{}
	addName := func(kind, n string) {
		k := kind + "/" + n
		if (have[k] && !removed[k]) || added[k] {
			errs = append(errs, fmt.Errorf("engine: add %s %q: duplicate %s name", kind, n, kind))
		}
		added[k] = true
	}
	for _, s := range c.AddSources {
		if s.Name == "" || s.Source == nil {
			errs = append(errs, errors.New("engine: add source: a source needs a name and an implementation"))
			continue
		}
		addName("source", s.Name)
	}
	keep := setOf(c.KeepBuffers)
	for _, s := range c.AddSinks {
		if s.Name == "" || s.Sink == nil {
			errs = append(errs, errors.New("engine: add sink: a sink needs a name and an implementation"))
			continue
		}
		addName("sink", s.Name)
		hasBuf := s.Buffer != nil || s.OpenBuffer != nil
		switch {
		case keep[s.Name] && hasBuf:
			errs = append(errs, fmt.Errorf("engine: add sink %q: keeps its buffer, so it brings none", s.Name))
		case !keep[s.Name] && !hasBuf:
			errs = append(errs, fmt.Errorf("engine: add sink %q: a sink needs a buffer", s.Name))
		}
	}
	for _, n := range c.KeepBuffers {
		if !removed["sink/"+n] || !added["sink/"+n] {
			errs = append(errs, fmt.Errorf("engine: keep buffer of sink %q: the sink must be removed and added in the same change", n))
		}
	}
	if c.ReplaceProcessors && slices.Contains(c.Processors, nil) {
		errs = append(errs, errors.New("engine: replace processors: a processor is nil"))
	}
	return errors.Join(errs...)
}

// stopSources cancels the named sources and waits for each (bounded by
// the drain timeout, as at shutdown), then drops them from the graph.
func (e *Engine) stopSources(names []string) {
	if len(names) == 0 {
		return
	}
	gone := setOf(names)
	e.graphMu.RLock()
	var stop []*sourceRunner
	for _, s := range e.sources {
		if gone[s.spec.Name] {
			stop = append(stop, s)
		}
	}
	e.graphMu.RUnlock()
	for _, s := range stop {
		s.cancel()
	}
	for _, s := range stop {
		if !waitChan(s.done, e.opts.DrainTimeout) {
			s.log.Error("removed source did not stop within the drain timeout; abandoning it", "timeout", e.opts.DrainTimeout)
		}
	}
	e.graphMu.Lock()
	e.sources = slices.DeleteFunc(slices.Clone(e.sources), func(s *sourceRunner) bool { return gone[s.spec.Name] })
	e.graphMu.Unlock()
}

// swap replaces the sinks and the processors (see Apply): kept buffers
// change reader first, then removed buffers are closed (so that no push
// stays blocked on one), then, at one cut in the push order, the chain
// and the pushed-to sinks change; removed sinks stop and release last.
// It returns the errors that leave the change incomplete.
func (e *Engine) swap(c Change, adds []SinkSpec, removedSink, keep map[string]bool) []error {
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.graphMu.RLock()
	old := map[string]*sinkRunner{}
	for _, s := range e.sinks {
		if removedSink[s.spec.Name] {
			old[s.spec.Name] = s
		}
	}
	e.graphMu.RUnlock()

	// A kept buffer changes reader before the cut: the old worker stops
	// (its Write in flight is cancelled and the batch goes back), the new
	// one starts on the same buffer. Pushes go on into that buffer all
	// along, so none is blocked for want of a reader.
	successor := map[*sinkRunner]*sinkRunner{}
	var ready []*sinkRunner
	var deferred []SinkSpec
	for _, a := range adds {
		switch {
		case keep[a.Name]:
			prev := old[a.Name]
			e.stopSink(closeCtx, prev, false)
			a.Buffer, a.DeadLetters = prev.spec.Buffer, prev.spec.DeadLetters
			r := e.newSinkRunner(a)
			r.pending = prev.pending // the same buffer's syncs
			successor[prev] = r
			e.graphMu.Lock()
			e.sinks = replaceRunner(e.sinks, prev, r)
			e.startSink(r)
			e.graphMu.Unlock()
		case a.Buffer == nil:
			deferred = append(deferred, a)
		default:
			ready = append(ready, e.newSinkRunner(a))
		}
	}
	// Close the buffers of the other removed sinks: a push waiting for
	// room in one (policy block, a sink that is down) returns, and the
	// cut below is not held up by a sink that is going away.
	var removed []*sinkRunner
	for name, s := range old {
		if !keep[name] {
			s.removing.Store(true)
			_ = s.spec.Buffer.Close()
			removed = append(removed, s)
		}
	}
	slices.SortFunc(removed, func(a, b *sinkRunner) int { return strings.Compare(a.spec.Name, b.spec.Name) })

	var oldProcs []pipeline.Processor
	e.mu.Lock()
	if c.ReplaceProcessors {
		oldProcs = e.procs
		e.graphMu.Lock()
		e.procs, e.procNames = slices.Clip(slices.Clone(c.Processors)), slices.Clone(c.ProcessorNames)
		e.graphMu.Unlock()
	}
	turn := e.order.take(nil)
	e.mu.Unlock()
	e.order.wait(turn)

	// In turn: no push runs, so the sinks fed change between two batches.
	var targets []*sinkRunner
	for _, s := range e.targets {
		switch {
		case successor[s] != nil:
			targets = append(targets, successor[s])
		case !s.removing.Load():
			targets = append(targets, s)
		}
	}
	targets = append(targets, ready...)
	if c.Classification != nil {
		for _, s := range targets {
			if s.spec.Route != nil {
				s.spec.Route.SetClassifier(c.Classification.Classifier)
			}
		}
	}
	e.graphMu.Lock()
	e.sinks = slices.DeleteFunc(slices.Clone(e.sinks), func(s *sinkRunner) bool { return s.removing.Load() })
	e.sinks = append(e.sinks, ready...)
	for _, r := range ready {
		e.startSink(r)
	}
	e.setTargets(targets)
	e.graphMu.Unlock()
	if len(deferred) == 0 {
		e.order.done(turn)
	}
	for _, s := range removed {
		e.stopSink(closeCtx, s, true)
	}
	var errs []error
	if len(deferred) > 0 {
		// Still in turn: the replaced sinks released their directories,
		// and their successors miss no sample.
		e.graphMu.Lock()
		for _, a := range deferred {
			if err := openBuffer(&a); err != nil {
				errs = append(errs, err)
				continue
			}
			if c.Classification != nil && a.Route != nil {
				a.Route.SetClassifier(c.Classification.Classifier)
			}
			r := e.newSinkRunner(a)
			e.sinks = append(slices.Clip(e.sinks), r)
			e.setTargets(append(slices.Clip(e.targets), r))
			e.startSink(r)
		}
		e.graphMu.Unlock()
		e.order.done(turn)
	}
	closeReplaced(oldProcs, c.Processors, e)
	return errs
}

func replaceRunner(list []*sinkRunner, old, new *sinkRunner) []*sinkRunner {
	out := slices.Clone(list)
	for i := range out {
		if out[i] == old {
			out[i] = new
		}
	}
	return out
}

// stopSink stops a removed sink's worker (a Write in flight is cancelled
// and its batch stays in the buffer) and closes the sink. Unless its
// buffer is handed on (release false), it then waits until no durability
// wait on the buffer is pending and closes and releases the buffer and
// the dead-letter store.
func (e *Engine) stopSink(ctx context.Context, s *sinkRunner, release bool) {
	s.connMu.Lock()
	if s.abort != nil {
		s.abort()
	}
	s.connMu.Unlock()
	if !waitChan(s.done, abandonAfter) {
		s.log.Error("removed sink ignored cancellation; abandoning it", "waited", abandonAfter)
	}
	if !release {
		// The buffer lives on with the successor, which pushes keep
		// feeding: nothing to wait for.
		for _, err := range s.closeAndRelease(ctx, false) {
			s.log.Warn("replaced sink did not close cleanly", "err", err)
		}
		s.log.Info("sink replaced; its buffer passes to the new sink")
		return
	}
	// No push adds to pending any more (removing is set, or the sink left
	// the targets in an earlier turn).
	pending := make(chan struct{})
	go func() { s.pending.Wait(); close(pending) }()
	if !waitChan(pending, abandonAfter) {
		s.log.Error("removed sink's buffer still syncing; releasing it anyway", "waited", abandonAfter)
	}
	_ = s.spec.Buffer.Close()
	if depth := s.spec.Buffer.Stats().Depth; depth > 0 {
		if _, ok := s.spec.Buffer.(pipeline.Releaser); ok {
			s.log.Info("sink removed; its durable buffer keeps its samples on disk", "samples_kept", depth)
		} else {
			s.log.Warn("sink removed; the samples in its memory buffer are dropped", "samples_lost", depth)
		}
	}
	for _, err := range s.closeAndRelease(ctx, true) {
		s.log.Warn("removed sink did not close cleanly", "err", err)
	}
	s.log.Info("sink removed")
}

// closeReplaced closes the processors of old that are not in new.
func closeReplaced(old, new []pipeline.Processor, e *Engine) {
	for _, p := range old {
		if slices.ContainsFunc(new, func(q pipeline.Processor) bool { return sameValue(p, q) }) {
			continue
		}
		var err error
		switch c := p.(type) {
		case interface{ Close() error }:
			err = c.Close()
		case interface{ Close() }:
			c.Close()
		case pipeline.Releaser:
			err = c.Release()
		}
		if err != nil {
			e.log.Warn("replaced processor did not close cleanly", "err", err)
		}
	}
}

// sameValue is p == q without the panic on incomparable dynamic types.
func sameValue(p, q pipeline.Processor) bool {
	if reflect.TypeOf(p) != reflect.TypeOf(q) || !reflect.TypeOf(p).Comparable() {
		return false
	}
	return p == q
}

// openBuffer calls spec's OpenBuffer.
func openBuffer(spec *SinkSpec) error {
	buf, dl, err := spec.OpenBuffer()
	if err == nil && buf == nil {
		err = errors.New("no buffer")
	}
	if err != nil {
		return fmt.Errorf("sink %s: open buffer: %w", spec.Name, err)
	}
	spec.Buffer, spec.DeadLetters = buf, dl
	return nil
}

// releaseSpec frees a buffer opened for a sink that was never added.
func releaseSpec(s SinkSpec) {
	if r, ok := s.Buffer.(pipeline.Releaser); ok {
		_ = r.Release()
	}
	if r, ok := s.DeadLetters.(pipeline.Releaser); ok {
		_ = r.Release()
	}
}

func waitChan(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func specNames(s []SourceSpec) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].Name
	}
	return out
}

func sinkNames(s []SinkSpec) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].Name
	}
	return out
}
