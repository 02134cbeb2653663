package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// tinyBackoff keeps retry loops fast without making them spin.
var tinyBackoff = backoff.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond}

// events is an ordered log shared by fakes, to check shutdown ordering.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) snapshot() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// fakeSource emits its batches once per Run that gets past before, then
// waits for ctx.
type fakeSource struct {
	name    string
	batches [][]model.Sample
	// before runs first in every Run (1-based call number); it may panic,
	// or return an error or errReturnNil to end Run early.
	before func(run int) error
	// goroutine makes Run emit from a goroutine of its own, as a source with
	// one goroutine per device does: a panic there is not under the
	// engine's recover around Run.
	goroutine bool
	events    *events

	runs        atomic.Int32
	emitted     chan struct{} // closed once every batch was offered
	emittedOnce sync.Once
	stopped     chan struct{} // closed when a Run returns after ctx ended
	stoppedOnce sync.Once

	mu       sync.Mutex
	emitErrs []error
}

var _ pipeline.Source = (*fakeSource)(nil)

var errReturnNil = errors.New("return nil")

func newSource(name string, batches ...[]model.Sample) *fakeSource {
	return &fakeSource{name: name, batches: batches, emitted: make(chan struct{}), stopped: make(chan struct{})}
}

func (s *fakeSource) Run(ctx context.Context, out pipeline.Emitter) error {
	n := int(s.runs.Add(1))
	if s.before != nil {
		if err := s.before(n); errors.Is(err, errReturnNil) {
			return nil
		} else if err != nil {
			return err
		}
	}
	emit := func() {
		for _, b := range s.batches {
			orig := slices.Clone(b)
			err := out.Emit(ctx, b)
			if !sameSamples(orig, b) {
				err = errors.Join(err, errors.New("Emit changed the caller's batch"))
			}
			if err != nil {
				s.mu.Lock()
				s.emitErrs = append(s.emitErrs, err)
				s.mu.Unlock()
				if ctx.Err() != nil {
					break
				}
			}
		}
		s.emittedOnce.Do(func() { close(s.emitted) })
	}
	if s.goroutine {
		done := make(chan struct{})
		go func() { defer close(done); emit() }()
		<-done
	} else {
		emit()
	}
	<-ctx.Done()
	s.events.add("source " + s.name + " stopped")
	s.stoppedOnce.Do(func() { close(s.stopped) })
	return nil
}

func (s *fakeSource) errs() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.emitErrs)
}

// fakeSink records what it confirmed. Hooks decide per call (1-based) what
// Connect and Write do: succeed, fail, panic or block.
type fakeSink struct {
	name    string
	connect func(ctx context.Context, call int) error
	write   func(ctx context.Context, call int, batch []model.Sample) error
	status  func() pipeline.Status // non-nil: the sink is a StatusReporter
	events  *events
	changed chan struct{} // a token after every call

	mu           sync.Mutex
	got          []model.Sample // confirmed samples, in order
	attempts     [][]uint64     // Seqs of every Write call
	connectCalls int
	closeCalls   int
}

var _ pipeline.Sink = (*fakeSink)(nil)

func newSink(name string) *fakeSink {
	return &fakeSink{name: name, changed: make(chan struct{}, 1)}
}

func (s *fakeSink) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *fakeSink) Connect(ctx context.Context) error {
	defer s.notify()
	s.mu.Lock()
	s.connectCalls++
	n := s.connectCalls
	s.mu.Unlock()
	s.notify() // the call began: a hook may block
	if s.connect != nil {
		return s.connect(ctx, n)
	}
	return nil
}

func (s *fakeSink) Write(ctx context.Context, batch []model.Sample) error {
	defer s.notify()
	s.mu.Lock()
	seqs := make([]uint64, len(batch))
	for i := range batch {
		seqs[i] = batch[i].Seq
	}
	s.attempts = append(s.attempts, seqs)
	n := len(s.attempts)
	s.mu.Unlock()
	s.notify() // the call began: a hook may block
	if s.write != nil {
		if err := s.write(ctx, n, batch); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.got = append(s.got, batch...) // copies: the engine reuses batch
	s.mu.Unlock()
	s.events.add("sink " + s.name + " write")
	return nil
}

func (s *fakeSink) Close(context.Context) error {
	defer s.notify()
	s.mu.Lock()
	s.closeCalls++
	s.mu.Unlock()
	s.events.add("sink " + s.name + " close")
	return nil
}

func (s *fakeSink) Status() pipeline.Status {
	if s.status == nil {
		return pipeline.Status{}
	}
	return s.status()
}

func (s *fakeSink) received() []model.Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *fakeSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *fakeSink) calls() (connects, writes, closes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connectCalls, len(s.attempts), s.closeCalls
}

// waitFor blocks until cond holds, re-checking after every sink call.
func (s *fakeSink) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for !cond() {
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("sink %s: timed out waiting for %s", s.name, what)
		}
	}
}

func (s *fakeSink) waitCount(t *testing.T, n int) {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("%d samples", n), func() bool { return s.count() >= n })
}

// gate is a Write or Connect hook helper: it blocks until opened or ctx ends.
type gate chan struct{}

func (g gate) wait(ctx context.Context) error {
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// samples builds n samples of one tag with values from..from+n-1; SourceTime
// is the value in ms after t0.
func samples(path string, from, n int) []model.Sample {
	out := make([]model.Sample, n)
	for i := range out {
		v := from + i
		out[i] = model.Sample{Path: path, Value: model.Int(int64(v)), SourceTime: t0 + int64(v)*int64(time.Millisecond)}
	}
	return out
}

// batches splits values 1..total of one tag into batches of size.
func batches(path string, total, size int) [][]model.Sample {
	var out [][]model.Sample
	for v := 1; v <= total; v += size {
		out = append(out, samples(path, v, min(size, total-v+1)))
	}
	return out
}

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func memSink(name string, s *fakeSink, capacity int, p buffer.Policy) SinkSpec {
	return SinkSpec{Name: name, Sink: s, Buffer: buffer.NewMemory(capacity, p)}
}

// running is an Engine under test.
type running struct {
	*Engine
	cancel  context.CancelFunc
	done    chan error
	stopped bool
	err     error
}

// start builds and runs an engine; the test's cleanup stops it.
func start(t *testing.T, opts Options) *running {
	t.Helper()
	if opts.Backoff == (backoff.Policy{}) {
		opts.Backoff = tinyBackoff
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	if opts.FirstSeq == 0 {
		opts.FirstSeq = 1 // readable expectations; the default is tested on its own
	}
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Engine: e, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it; it returns Run's error and how long
// Run took to return after the cancel.
func (r *running) stop(t *testing.T) (error, time.Duration) {
	t.Helper()
	if r.stopped {
		return r.err, 0
	}
	r.stopped = true
	began := time.Now()
	r.cancel()
	select {
	case r.err = <-r.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return 2 min after cancel")
	}
	return r.err, time.Since(began)
}

// component finds a component's status by kind and name.
func component(t *testing.T, st Status, kind, name string) ComponentStatus {
	t.Helper()
	for _, c := range st.Components {
		if c.Kind == kind && c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s %q in status %+v", kind, name, st)
	return ComponentStatus{}
}

func seqs(s []model.Sample) []uint64 {
	out := make([]uint64, len(s))
	for i := range s {
		out[i] = s[i].Seq
	}
	return out
}

func values(s []model.Sample) []int64 {
	out := make([]int64, len(s))
	for i := range s {
		out[i] = s[i].Value.AsInt()
	}
	return out
}

func strictlyIncreasing(s []uint64) bool {
	for i := 1; i < len(s); i++ {
		if s[i] <= s[i-1] {
			return false
		}
	}
	return true
}

func upTo(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

func sameSamples(a, b []model.Sample) bool {
	return slices.EqualFunc(a, b, func(x, y model.Sample) bool {
		return x.Path == y.Path && x.Value.Equal(y.Value) && x.Quality == y.Quality &&
			x.SourceTime == y.SourceTime && x.EdgeTime == y.EdgeTime && x.Seq == y.Seq && x.Historical == y.Historical
	})
}
