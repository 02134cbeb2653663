package route

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/match"
	"github.com/weir-edge/weir/security"
)

// Options build a Route.
type Options struct {
	// Sink names the sink, for counters and security events.
	Sink      string
	Selection Selection
	// MaxClass is the highest class the sink may receive; 0: DefaultClass.
	MaxClass Class
	// Classifier classifies tag paths; nil: every tag is DefaultClass.
	Classifier *Classifier
	// Processors are the sink's own chain, run after selection and the
	// class check, before the buffer; ProcessorNames name them.
	Processors     []pipeline.Processor
	ProcessorNames []string
	// Events receives one security.EgressDenied per sink and tag held
	// back by classification; nil: none (SetEvents may set it later).
	Events security.Recorder
	// Denied is the set of tags already reported for this sink, kept by
	// the caller across reloads (DeniedSet); nil: a new set.
	Denied *DeniedSet
	// Now stamps security events; default time.Now.
	Now func() time.Time
}

// Counters are one route's totals since it started. After the buffer
// drained: In = Filtered + Denied + ChainIn, and ChainOut samples entered
// the buffer (a chain may drop, aggregate or add samples).
type Counters struct {
	In       uint64 // samples offered to the route
	Filtered uint64 // not selected (pattern or quality)
	Denied   uint64 // selected but above the sink's class: held back
	ChainIn  uint64 // handed to the sink's chain (= selected and allowed)
	ChainOut uint64 // left the chain into the buffer
	InBytes  uint64 // estimated bytes of In (model.Sample.Size)
	OutBytes uint64 // estimated bytes of ChainOut
}

// Limits of a route's per-path state; both are cleared or capped rather
// than grown, so a source that invents paths cannot exhaust memory.
const (
	// maxCache bounds the per-path decision cache; when full it is
	// cleared (like processors/match) and refills from the hot paths.
	maxCache = 16384
	// fastSlots is the size of the direct-mapped front of the cache (see
	// fastEntry); a power of two.
	fastSlots = 1024
	// MaxDeniedTags bounds the set of tags a route has reported as
	// denied; past it denials are counted only, and one event says so.
	MaxDeniedTags = 10_000
)

// verdict is a route's cached decision for one path.
type verdict uint8

const (
	selected verdict = iota + 1
	filtered         // not included, or excluded
	denied           // selected, but above the sink's class
)

// fastEntry is one slot of the direct-mapped front of the decision
// cache, indexed by the address of a path's bytes. Sources build each
// tag's path once, so every sample of a tag carries the same string, and
// a hit costs an address compare instead of hashing the path. The entry
// holds its path string, which keeps those bytes alive and unchanged (Go
// strings are immutable and the heap does not move), so the same address
// and length is the same path. A miss falls back to the map.
type fastEntry struct {
	path string
	d    decision
}

type decision struct {
	v        verdict
	class    Class
	reported bool // denied: the event for this path went out (or the set is full)
}

// clBox carries a classifier through an atomic pointer; a new box is a
// new classification, even when the classifier is nil.
type clBox struct{ c *Classifier }

type recBox struct{ r security.Recorder }

// Route is one sink's compiled route. The engine calls Process and Flush
// in push order (one batch at a time, never concurrently); Counters,
// SetClassifier and SetEvents may be called at any time from any
// goroutine.
//
// Selection and the class check cost one map lookup per sample (a
// per-path decision cache), none at all for a route that selects
// everything and a classification that cannot exceed the sink's class;
// the per-sample quality check is a byte compare. Counters are summed per
// batch and added once, so a route costs no atomic per sample.
type Route struct {
	sink     string
	include  *match.Matcher // nil: every path
	exclude  *match.Matcher // nil: none
	maxQ     model.QualityCode
	maxClass Class
	procs    []pipeline.Processor
	names    []string
	flusher  bool
	now      func() time.Time

	// Pending and applied classification: SetClassifier stores, the push
	// path adopts it at the start of its next batch (clearing the cache).
	next    atomic.Pointer[clBox]
	applied *clBox
	// passAll: no pattern to test and no tag can be above the sink's
	// class, so every path is selected without a lookup.
	passAll  bool
	cache    map[string]decision
	maxCache int
	fast     []fastEntry // fastSlots entries
	noFast   bool        // tests: the map only

	events atomic.Pointer[recBox]
	// deniedSet holds the tags reported denied; SetDenied may swap it.
	deniedSet atomic.Pointer[DeniedSet]

	in, filtered, denied, chainIn, chainOut, inBytes, outBytes atomic.Uint64
}

// New compiles a route; the Selection must be valid (Validate).
func New(o Options) (*Route, error) {
	if err := o.Selection.Validate(); err != nil {
		return nil, fmt.Errorf("route of sink %s: %w", o.Sink, err)
	}
	if o.MaxClass == 0 {
		o.MaxClass = DefaultClass
	}
	if !o.MaxClass.Valid() {
		return nil, fmt.Errorf("route of sink %s: invalid max class %v", o.Sink, o.MaxClass)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Route{sink: o.Sink, maxClass: o.MaxClass, now: o.Now, maxCache: maxCache,
		cache: map[string]decision{}, fast: make([]fastEntry, fastSlots)}
	if o.Denied == nil {
		o.Denied = NewDeniedSet(o.MaxClass)
	}
	r.deniedSet.Store(o.Denied)
	var err error
	if len(o.Selection.Include) > 0 {
		if r.include, err = match.Compile(o.Selection.Include); err != nil {
			return nil, err
		}
		if r.include.All() {
			r.include = nil
		}
	}
	if len(o.Selection.Exclude) > 0 {
		if r.exclude, err = match.Compile(o.Selection.Exclude); err != nil {
			return nil, err
		}
	}
	switch o.Selection.Quality {
	case "", QualityAny:
		r.maxQ = model.Bad
	case QualityNotBad:
		r.maxQ = model.Uncertain
	case QualityGood:
		r.maxQ = model.Good
	}
	for i, p := range o.Processors {
		if p == nil {
			return nil, fmt.Errorf("route of sink %s: processor %d is nil", o.Sink, i)
		}
		if _, ok := p.(pipeline.Flusher); ok {
			r.flusher = true
		}
	}
	r.procs = o.Processors
	r.names = o.ProcessorNames
	r.SetClassifier(o.Classifier)
	r.SetEvents(o.Events)
	return r, nil
}

// Sink is the name of the sink the route feeds.
func (r *Route) Sink() string { return r.sink }

// MaxClass is the highest class the sink may receive.
func (r *Route) MaxClass() Class { return r.maxClass }

// Processors are the route's own chain and their names, for status.
func (r *Route) Processors() ([]pipeline.Processor, []string) { return r.procs, r.names }

// HasFlusher reports whether a processor of the chain emits on time
// (pipeline.Flusher): the engine then calls Flush on every tick.
func (r *Route) HasFlusher() bool { return r.flusher }

// SetClassifier changes the classification (a live reload): the route
// adopts it at the start of its next Process or Flush and forgets every
// cached decision. nil classifies every tag as DefaultClass.
func (r *Route) SetClassifier(c *Classifier) { r.next.Store(&clBox{c: c}) }

// SetEvents sets where EgressDenied events go; nil: nowhere.
func (r *Route) SetEvents(rec security.Recorder) { r.events.Store(&recBox{r: rec}) }

// SetDenied makes d the set of tags already reported for the sink (the
// gateway's, kept per sink name across reloads); nil is ignored. Paths the
// route already marked reported stay so.
func (r *Route) SetDenied(d *DeniedSet) {
	if d != nil {
		r.deniedSet.Store(d)
	}
}

// Denied is the route's set of reported tags.
func (r *Route) Denied() *DeniedSet { return r.deniedSet.Load() }

// Counters snapshots the totals.
func (r *Route) Counters() Counters {
	return Counters{In: r.in.Load(), Filtered: r.filtered.Load(), Denied: r.denied.Load(),
		ChainIn: r.chainIn.Load(), ChainOut: r.chainOut.Load(), InBytes: r.inBytes.Load(), OutBytes: r.outBytes.Load()}
}

// adopt takes a classification set since the last batch.
func (r *Route) adopt() {
	b := r.next.Load()
	if b == r.applied {
		return
	}
	r.applied = b
	clear(r.cache)
	clear(r.fast)
	r.passAll = r.include == nil && r.exclude == nil && b.c.max() <= r.maxClass
}

// Process appends to out what the sink receives of batch: the samples its
// selection takes (patterns, quality) and its class allows, run through
// its own chain. batch is not modified (other sinks receive it too).
// Samples the chain creates carry Seq 0; the caller numbers them. A
// panicking processor fails the batch for this sink (out as passed, and
// an error), not the process.
func (r *Route) Process(batch, out []model.Sample) ([]model.Sample, error) {
	r.adopt()
	start := len(out)
	var nFiltered, nDenied, inBytes, selBytes uint64
	for i := range batch {
		s := &batch[i]
		size := uint64(s.Size())
		inBytes += size
		if s.Quality.Code > r.maxQ {
			nFiltered++
			continue
		}
		if !r.passAll {
			d := r.decide(s.Path)
			switch d.v {
			case filtered:
				nFiltered++
				continue
			case denied:
				nDenied++
				if !d.reported {
					r.report(s.Path, d.class)
				}
				continue
			}
		}
		selBytes += size
		out = append(out, *s)
	}
	nIn := uint64(len(out) - start)
	r.in.Add(uint64(len(batch)))
	r.inBytes.Add(inBytes)
	r.filtered.Add(nFiltered)
	r.denied.Add(nDenied)
	r.chainIn.Add(nIn)
	if len(r.procs) == 0 {
		r.chainOut.Add(nIn)
		r.outBytes.Add(selBytes)
		return out, nil
	}
	if nIn == 0 {
		return out, nil
	}
	res, err := r.run(0, out[start:])
	if err != nil {
		return out[:start], err
	}
	out = append(out[:start], res...)
	r.countOut(out[start:])
	return out, nil
}

// Flush appends what the chain's time-driven processors emit at now, each
// run through the processors after it, like the engine's shared chain.
func (r *Route) Flush(now time.Time, out []model.Sample) ([]model.Sample, error) {
	r.adopt()
	if !r.flusher {
		return out, nil
	}
	start0 := len(out)
	var errs []error
	for i, p := range r.procs {
		f, ok := p.(pipeline.Flusher)
		if !ok {
			continue
		}
		start := len(out)
		var err error
		out, err = r.flushOne(f, i, now, out)
		if err != nil {
			out, errs = out[:start], append(errs, err)
			continue
		}
		if len(out) == start || i == len(r.procs)-1 {
			continue
		}
		res, err := r.run(i+1, out[start:])
		if err != nil {
			out, errs = out[:start], append(errs, err)
			continue
		}
		out = append(out[:start], res...)
	}
	r.countOut(out[start0:])
	return out, errors.Join(errs...)
}

func (r *Route) flushOne(f pipeline.Flusher, i int, now time.Time, out []model.Sample) (res []model.Sample, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = out, fmt.Errorf("route of sink %s: processor %s flush: panic: %v", r.sink, r.name(i), p)
		}
	}()
	return f.Flush(now, out), nil
}

// run runs the chain from processor i on work, recovering a panic.
func (r *Route) run(i int, work []model.Sample) (out []model.Sample, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("route of sink %s: processor %s: panic: %v", r.sink, r.name(i), p)
		}
	}()
	for ; i < len(r.procs); i++ {
		work = r.procs[i].Process(work)
		if len(work) == 0 {
			break
		}
	}
	return work, nil
}

func (r *Route) name(i int) string {
	if i < len(r.names) && r.names[i] != "" {
		return r.names[i]
	}
	return fmt.Sprintf("%d", i)
}

func (r *Route) countOut(out []model.Sample) {
	var n uint64
	for i := range out {
		n += uint64(out[i].Size())
	}
	r.chainOut.Add(uint64(len(out)))
	r.outBytes.Add(n)
}

// decide is the cached verdict for path: from its fast slot, else from
// the map (filling the slot), else computed.
func (r *Route) decide(path string) decision {
	if len(path) == 0 || r.noFast {
		return r.decideSlow(path)
	}
	p := unsafe.StringData(path)
	e := &r.fast[fastSlot(p)]
	if len(e.path) == len(path) && unsafe.StringData(e.path) == p {
		return e.d
	}
	d := r.decideSlow(path)
	e.path, e.d = path, d
	return d
}

// fastSlot spreads addresses over the slots: heap strings of one size
// class sit a multiple of 16 bytes apart.
func fastSlot(p *byte) uintptr {
	a := uintptr(unsafe.Pointer(p))
	return (a>>4 ^ a>>14) & (fastSlots - 1)
}

func (r *Route) decideSlow(path string) decision {
	if d, ok := r.cache[path]; ok {
		return d
	}
	d := r.compute(path)
	if len(r.cache) >= r.maxCache {
		clear(r.cache)
	}
	r.cache[path] = d
	return d
}

// compute decides path: exclude beats include, and a selected tag above
// the sink's class is denied. Unselected tags are never classified, so
// they raise no event.
func (r *Route) compute(path string) decision {
	if (r.include != nil && !r.include.MatchConcurrent(path)) || (r.exclude != nil && r.exclude.MatchConcurrent(path)) {
		return decision{v: filtered}
	}
	var cl *Classifier
	if r.applied != nil {
		cl = r.applied.c
	}
	c := cl.Class(path)
	if c > r.maxClass {
		return decision{v: denied, class: c}
	}
	return decision{v: selected, class: c}
}

// report sends one EgressDenied per sink and tag — the sink's DeniedSet
// decides, so a reload does not report again — bounded by MaxDeniedTags,
// and marks the path's cached decision so its later samples skip the set.
func (r *Route) report(path string, class Class) {
	defer r.markReported(path)
	due, full := r.deniedSet.Load().add(path)
	if !due {
		return
	}
	ev := security.Event{Kind: security.EgressDenied, Severity: security.SeverityWarning,
		Component: r.sink, Object: path, Outcome: "denied",
		Detail: fmt.Sprintf("tag is classified %s, above sink %s's max_class %s: held back, whatever its route selects", class, r.sink, r.maxClass)}
	if full {
		ev.Object = ""
		ev.Detail = fmt.Sprintf("more than %d tags denied to sink %s (max_class %s): further tags are counted (route_denied_samples) but not reported one by one",
			MaxDeniedTags, r.sink, r.maxClass)
	}
	if b := r.events.Load(); b != nil && b.r != nil {
		ev.Time = r.now()
		b.r.Record(context.Background(), ev)
	}
}

func (r *Route) markReported(path string) {
	if d, ok := r.cache[path]; ok && !d.reported {
		d.reported = true
		r.cache[path] = d
	}
	if len(path) > 0 {
		if e := &r.fast[fastSlot(unsafe.StringData(path))]; e.path == path {
			e.d.reported = true
		}
	}
}

// max is the highest class c can give any tag.
func (c *Classifier) max() Class {
	if c == nil {
		return DefaultClass
	}
	m := c.def
	for _, r := range c.rules {
		m = max(m, r.class)
	}
	return m
}
