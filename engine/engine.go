package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/weir-edge/weir/security"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/route"
)

// SourceSpec is a named source to run.
type SourceSpec struct {
	Name   string
	Source pipeline.Source
}

// SinkSpec is a named sink with its buffer.
type SinkSpec struct {
	Name   string
	Sink   pipeline.Sink
	Buffer buffer.Buffer
	// BatchSize caps the samples per Write; default 1000.
	BatchSize int
	// DeadLetters keeps the samples the destination refuses for good
	// (pipeline.ErrRejected); nil drops them, counted and logged.
	DeadLetters DeadLetters
	// OpenBuffer, for a sink that Apply adds while Buffer is nil, opens
	// its buffer and dead-letter store when it is added: after the sinks
	// the same Change removes were released, so that a changed sink can
	// reopen the durable buffer directory its predecessor held (a store
	// is locked by whoever holds it open). Unused by New.
	OpenBuffer func() (buffer.Buffer, DeadLetters, error)
	// Route selects what the sink receives, holds back tags above its
	// class and runs its own processors before its buffer; nil: every
	// sample, unchanged (tests, bench). Config always builds one.
	Route *route.Route
}

// Options configure an Engine.
type Options struct {
	Sources    []SourceSpec
	Processors []pipeline.Processor
	// ProcessorNames name the processors in Status, index for index;
	// optional.
	ProcessorNames []string
	Sinks          []SinkSpec
	// DrainTimeout bounds how long sinks may take to deliver what is
	// buffered at shutdown; default 10s. Whatever is left stays in durable
	// buffers, or is counted as lost for memory buffers.
	DrainTimeout time.Duration
	// Backoff for restarting failed components and retrying writes.
	Backoff backoff.Policy
	Logger  *slog.Logger
	// Now is the clock for edge timestamps; default time.Now.
	Now func() time.Time
	// TickInterval is how often time-driven processors (pipeline.Flusher)
	// are flushed; default 100ms, negative disables the ticker (tests call
	// Tick themselves with a fake clock).
	TickInterval time.Duration
	// FirstSeq is the sequence id of the first sample. Consumers
	// de-duplicate replays by (node, seq), so ids must not repeat across
	// restarts: the default is the current Unix time in microseconds,
	// which stays ahead of any earlier run as long as the gateway emits
	// fewer than a million samples per second and the clock does not
	// step back further than the previous run's lead.
	FirstSeq uint64
	// Events receives a security.CertRejected event when a source's or
	// sink's peer presents a certificate that fails verification (see
	// certreject.go); nil: none.
	Events security.Recorder
}

// Engine runs one pipeline graph. Create with New, then call Run once.
type Engine struct {
	opts Options
	log  *slog.Logger

	// graphMu guards the graph, which Apply changes while Run runs:
	// sources, sinks, procs and procNames are replaced (copy on write,
	// never modified in place) under it. procs are also replaced under
	// mu, which process holds.
	graphMu sync.RWMutex
	sources []*sourceRunner
	sinks   []*sinkRunner
	// targets are the sinks push feeds. push reads them without a lock,
	// in its turn: Apply replaces them only while it holds a push turn
	// (see apply.go). Usually the same runners as sinks; during an Apply
	// a kept buffer's old runner may stand in for its successor.
	targets   []*sinkRunner
	procs     []pipeline.Processor
	procNames []string
	run       *runState // nil until Run starts
	// applyMu serialises Apply calls, and Apply with Run's shutdown.
	applyMu sync.Mutex
	// started is when Run began, on opts.Now; atomic because Status may be
	// polled while Run starts.
	started atomic.Pointer[time.Time]

	mu          sync.Mutex // serialises the processor chain and sequence ids
	scratch     []model.Sample
	tickScratch []model.Sample
	// seq is the last sequence id given. Emit and Tick number under mu,
	// in order; a route numbers the samples its sink's chain creates in
	// the push turn, outside mu, so the counter is atomic: ids stay
	// unique, and a sink's buffer still receives them in push order.
	seq   atomic.Uint64
	order pushOrder // pushes in sequence order, outside mu
	// routeFlush is whether a target's route has a time-driven processor,
	// so that Tick takes a push turn even when the shared chain flushed
	// nothing. Updated whenever targets change.
	routeFlush atomic.Bool

	emitted  atomic.Uint64
	filtered atomic.Uint64
	ready    atomic.Bool
	draining atomic.Bool // set once sources have stopped
}

var _ pipeline.Emitter = (*Engine)(nil)

// New checks the graph and builds an Engine; nothing starts yet.
func New(opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FirstSeq == 0 {
		opts.FirstSeq = uint64(opts.Now().UnixMicro())
	}
	e := &Engine{opts: opts, log: opts.Logger, procs: opts.Processors, procNames: opts.ProcessorNames}
	e.seq.Store(opts.FirstSeq - 1)
	names := map[string]bool{}
	for _, s := range opts.Sources {
		if s.Name == "" || s.Source == nil {
			return nil, errors.New("engine: a source needs a name and an implementation")
		}
		if names["source/"+s.Name] {
			return nil, fmt.Errorf("engine: duplicate source name %q", s.Name)
		}
		names["source/"+s.Name] = true
		e.sources = append(e.sources, e.newSourceRunner(s))
	}
	for _, s := range opts.Sinks {
		if s.Name == "" || s.Sink == nil || s.Buffer == nil {
			return nil, errors.New("engine: a sink needs a name, an implementation and a buffer")
		}
		if names["sink/"+s.Name] {
			return nil, fmt.Errorf("engine: duplicate sink name %q", s.Name)
		}
		names["sink/"+s.Name] = true
		e.sinks = append(e.sinks, e.newSinkRunner(s))
	}
	e.setTargets(e.sinks)
	return e, nil
}

func (e *Engine) newSourceRunner(s SourceSpec) *sourceRunner {
	r := &sourceRunner{spec: s, engine: e, done: make(chan struct{}),
		log: e.opts.Logger.With("component", "source", "name", s.Name)}
	r.state = pipeline.StateStarting // until its goroutine runs
	return r
}

func (e *Engine) newSinkRunner(s SinkSpec) *sinkRunner {
	if s.BatchSize <= 0 {
		s.BatchSize = 1000
	}
	r := &sinkRunner{spec: s, engine: e, done: make(chan struct{}), pending: &sync.WaitGroup{},
		log: e.opts.Logger.With("component", "sink", "name", s.Name)}
	r.state = pipeline.StateStarting
	return r
}

// Emit implements pipeline.Emitter: it stamps sequence ids, runs the
// processor chain and pushes the result into every sink's buffer.
//
// The processor chain (rules included) runs under e.mu; the push runs
// after e.mu is released, in sequence order (see pushTurn). So a buffer
// that blocks (policy block, full) holds back the Emit calls that feed it,
// which is the back-pressure the user chose, but never the processors: a
// rule still sees every other source's samples within microseconds.
func (e *Engine) Emit(ctx context.Context, batch []model.Sample) error {
	if len(batch) == 0 {
		return nil
	}
	e.mu.Lock()
	// Copy so processors may work in place without touching the caller's
	// slice; the scratch buffer is reused across calls.
	work := append(e.scratch[:0], batch...)
	for i := range work {
		work[i].Seq = e.seq.Add(1)
	}
	e.scratch = work
	work, err := e.process(0, work)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	e.numberNew(work)
	e.emitted.Add(uint64(len(batch)))
	if len(work) < len(batch) { // a processor may also add samples
		e.filtered.Add(uint64(len(batch) - len(work)))
	}
	if len(work) == 0 {
		e.mu.Unlock()
		return nil
	}
	out := e.order.handOff(work, &e.scratch)
	e.mu.Unlock()
	return e.pushInTurn(ctx, out)
}

// pushInTurn waits for out's turn, pushes it to every sink's buffer, hands
// the turn on and then waits for durability (outside the turn, so that
// concurrent sources share one group commit).
func (e *Engine) pushInTurn(ctx context.Context, out *pushTurn) error {
	e.order.wait(out)
	waits, err := e.push(ctx, out.samples)
	e.order.done(out)
	return errors.Join(err, awaitDurable(waits))
}

// asyncPusher is a buffer that can store in order now and make durable
// later (buffer/durable with fsync: group): the engine stores under its
// lock, keeping sequence order, and waits for the sync outside it.
type asyncPusher interface {
	PushAsync(ctx context.Context, samples []model.Sample) (func() error, error)
}

// awaitDurable waits for every pending sync.
func awaitDurable(waits []func() error) error {
	var errs []error
	for _, w := range waits {
		if err := w(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Tick flushes the time-driven processors at now: what each returns gets
// sequence ids, runs through the processors after it and is pushed to the
// sinks. Run calls it every TickInterval; tests call it with a fake clock.
func (e *Engine) Tick(ctx context.Context, now time.Time) error {
	var errs []error
	var out *pushTurn
	e.mu.Lock()
	for i, p := range e.procs {
		f, ok := p.(pipeline.Flusher)
		if !ok {
			continue
		}
		var flushed []model.Sample
		err := safeCall(fmt.Sprintf("processor %d flush", i), func() error {
			flushed = f.Flush(now, e.tickScratch[:0])
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("engine: %w", err))
			continue
		}
		e.tickScratch = flushed
		if len(flushed) == 0 {
			continue
		}
		for j := range flushed {
			flushed[j].Seq = e.seq.Add(1)
		}
		rest, err := e.process(i+1, flushed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.numberNew(rest)
		e.emitted.Add(uint64(len(flushed)))
		if len(rest) == 0 {
			continue
		}
		if out == nil {
			out = e.order.take(rest)
		} else {
			out.samples = append(out.samples, rest...)
		}
	}
	if out == nil && e.routeFlush.Load() {
		out = e.order.take(nil) // a turn for the routes' own flushers
	}
	e.mu.Unlock()
	if out != nil {
		e.order.wait(out)
		waits, err := e.push(ctx, out.samples)
		rwaits, rerr := e.flushRoutes(ctx, now)
		e.order.done(out)
		errs = append(errs, err, rerr, awaitDurable(append(waits, rwaits...)))
	}
	return errors.Join(errs...)
}

// numberNew gives sequence ids to samples a processor created (derived
// tags), which carry none. Called with e.mu held.
func (e *Engine) numberNew(work []model.Sample) {
	for i := range work {
		if work[i].Seq == 0 {
			work[i].Seq = e.seq.Add(1)
		}
	}
}

// push hands work to every sink's buffer, through the sink's route when
// it has one. Called in work's turn (so buffers receive samples in
// sequence order); it returns the durability waits to run after the turn
// is handed on.
func (e *Engine) push(ctx context.Context, work []model.Sample) ([]func() error, error) {
	if len(work) == 0 {
		return nil, nil
	}
	var waits []func() error
	var errs []error
	for _, s := range e.targets {
		if s.removing.Load() {
			continue // its buffer is closed: the sink is being removed
		}
		samples := work
		if s.spec.Route != nil {
			var err error
			if samples, err = e.route(s, work); err != nil {
				errs = append(errs, fmt.Errorf("sink %s: %w", s.spec.Name, err))
			}
		}
		wait, err := e.pushTo(ctx, s, samples)
		if wait != nil {
			waits = append(waits, wait)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return waits, errors.Join(errs...)
}

// pushTo pushes samples into one sink's buffer, returning the durability
// wait of an asynchronous buffer.
func (e *Engine) pushTo(ctx context.Context, s *sinkRunner, samples []model.Sample) (func() error, error) {
	if len(samples) == 0 {
		return nil, nil
	}
	var err error
	var out func() error
	if ap, ok := s.spec.Buffer.(asyncPusher); ok {
		var wait func() error
		// pending lets Apply release a removed sink's buffer only
		// once no sync on it is awaited any more.
		s.pending.Add(1)
		wait, err = ap.PushAsync(ctx, samples)
		if wait != nil {
			pending := s.pending
			out = func() error { defer pending.Done(); return wait() }
		} else {
			s.pending.Done()
		}
	} else {
		err = s.spec.Buffer.Push(ctx, samples)
	}
	if err != nil && !(s.removing.Load() && errors.Is(err, buffer.ErrClosed)) {
		return out, fmt.Errorf("sink %s: %w", s.spec.Name, err)
	}
	return out, nil
}

// process runs the processor chain from processor start on. A panicking
// processor fails this Emit (the batch is not accepted) instead of the
// process: the source may call Emit from a goroutine of its own, outside
// the recover around Source.Run.
func (e *Engine) process(start int, work []model.Sample) (out []model.Sample, err error) {
	i := start
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("engine: processor %d: panic: %v", i, r)
		}
	}()
	for ; i < len(e.procs); i++ {
		work = e.procs[i].Process(work)
		if len(work) == 0 {
			break
		}
	}
	return work, nil
}

// Run starts every component and blocks until ctx is done, then shuts down
// in order (sources first, then a bounded drain of the sinks). It returns
// nil after a clean shutdown. Components added by Apply meanwhile are shut
// down the same way.
func (e *Engine) Run(ctx context.Context) error {
	started := e.opts.Now()
	e.started.Store(&started)
	sinkCtx, cancelSinks := context.WithCancel(context.Background())
	defer cancelSinks()
	rs := &runState{ctx: ctx, sinkCtx: sinkCtx}
	e.graphMu.Lock()
	if e.run != nil {
		e.graphMu.Unlock()
		return errors.New("engine: Run called twice")
	}
	e.run = rs
	for _, s := range e.sinks {
		e.startSink(s)
	}
	for _, s := range e.sources {
		e.startSource(s)
	}
	e.startTickerLocked()
	nSources, nSinks := len(e.sources), len(e.sinks)
	e.graphMu.Unlock()
	// Running from here on; whether data can flow is up to the components
	// (see readiness).
	e.ready.Store(true)
	e.log.Info("engine started", "sources", nSources, "sinks", nSinks, "first_seq", e.opts.FirstSeq)
	<-ctx.Done()
	e.ready.Store(false)

	// An Apply under way finishes first (its waits are bounded); none
	// starts after this.
	e.applyMu.Lock()
	e.graphMu.Lock()
	rs.stopping = true
	sinks := e.sinks
	e.graphMu.Unlock()
	e.applyMu.Unlock()

	rs.tickWG.Wait()
	e.log.Info("stopping sources")
	if !waitTimeout(&rs.srcWG, e.opts.DrainTimeout) {
		// A source ignoring ctx must not hold the process hostage; its
		// goroutine is abandoned (and reported) rather than waited for.
		e.log.Error("sources did not stop within the drain timeout; continuing shutdown", "timeout", e.opts.DrainTimeout)
	}

	e.log.Info("draining sinks", "timeout", e.opts.DrainTimeout)
	e.draining.Store(true)
	for _, s := range sinks {
		_ = s.spec.Buffer.Close() // Next still hands out what is left
		// Only a connected sink can drain; the others would hold
		// shutdown for the whole timeout and deliver nothing.
		if s.abortIfNotConnected() {
			e.log.Info("sink not connected; not waiting for it to drain", "sink", s.spec.Name,
				"samples_kept", s.spec.Buffer.Stats().Depth)
		}
	}
	if !waitTimeout(&rs.sinkWG, e.opts.DrainTimeout) {
		e.log.Warn("drain deadline reached; undelivered samples remain in buffers")
		cancelSinks()
		if !waitTimeout(&rs.sinkWG, abandonAfter) {
			e.log.Error("a sink ignored cancellation; abandoning it", "waited", abandonAfter)
		}
	}
	var errs []error
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	for _, s := range sinks {
		if st := s.spec.Buffer.Stats(); st.Depth > 0 {
			e.log.Warn("sink stopped with undelivered samples", "sink", s.spec.Name, "samples", st.Depth)
		}
		errs = append(errs, s.closeAndRelease(closeCtx, true)...)
	}
	e.log.Info("engine stopped")
	return errors.Join(errs...)
}

// runTicker flushes time-driven processors every TickInterval until ctx
// ends.
func (e *Engine) runTicker(ctx context.Context) {
	interval := e.opts.TickInterval
	if interval == 0 {
		interval = defaultTickInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Tick(ctx, e.opts.Now()); err != nil && ctx.Err() == nil {
				e.log.Warn("processor flush failed", "err", err)
			}
		}
	}
}

const defaultTickInterval = 100 * time.Millisecond

// abandonAfter bounds the wait for a sink that ignores cancellation.
const abandonAfter = 5 * time.Second

// waitTimeout waits for wg up to d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Ready reports whether the engine runs and data can flow: at least one
// source and one sink are up (see Readiness in the package doc). Status
// says why not.
func (e *Engine) Ready() bool { return e.Status().Ready }

// safeCall runs f and turns a panic into an error, so that one broken
// component cannot take the process down.
func safeCall(where string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: panic: %v", where, r)
		}
	}()
	return f()
}
