package window

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/match"
)

// Reasons on aggregate samples.
const (
	ReasonEmpty     = "empty window"
	ReasonUncertain = "uncertain input"
)

// maxCatchUp bounds the windows one tag emits per Flush, so a clock jump
// with emit_empty cannot produce an unbounded batch; the rest follow on the
// next ticks.
const maxCatchUp = 1000

// none is the "no pending deadline" value of nextDue.
const none = math.MaxInt64

// Processor aggregates samples into event-time windows and emits the
// aggregates from Flush when windows close.
type Processor struct {
	match     *match.Matcher
	aggs      []aggregate
	size      int64
	slide     int64
	lateness  int64
	update    bool
	horizon   int64
	emitEmpty bool
	pass      bool
	keep      int // values kept per pane for percentiles; 0 = none needed
	maxPanes  int
	maxTags   int
	label     string
	log       *slog.Logger
	rng       *rand.Rand
	series    map[string]*series
	nextDue   int64 // lower bound of the earliest window deadline
	sortBuf   []float64

	aggregated  atomic.Uint64
	skipped     atomic.Uint64
	lateDropped atomic.Uint64
	latePartial atomic.Uint64
	lateUpdates atomic.Uint64
	noRoom      atomic.Uint64
	untracked   atomic.Uint64
	emitted     atomic.Uint64
	sampled     atomic.Uint64
	tags        atomic.Int64
}

var (
	_ pipeline.Processor      = (*Processor)(nil)
	_ pipeline.Flusher        = (*Processor)(nil)
	_ pipeline.StatusReporter = (*Processor)(nil)
)

// series is the window state of one tag.
type series struct {
	outPaths   []string // one per aggregate
	panes      []pane   // ascending start
	nextEnd    int64    // end of the next window to emit; 0: none pending
	emitted    bool
	emittedEnd int64   // end of the newest window emitted
	dirty      []int64 // ends of emitted windows to re-emit (late: update)
}

type pane struct {
	start int64
	acc   acc
}

// New builds the processor; it validates cfg again.
func New(cfg Config, log *slog.Logger) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("window: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := match.Compile(cfg.Match)
	if err != nil {
		return nil, fmt.Errorf("window: %w", err)
	}
	p := &Processor{
		match: m, size: int64(cfg.Size), slide: int64(cfg.Slide), lateness: int64(cfg.AllowedLateness),
		update: cfg.Late == "update", horizon: int64(cfg.UpdateHorizon), emitEmpty: cfg.EmitEmpty,
		pass: cfg.PassThrough, maxTags: cfg.MaxTags, label: cfg.Label, log: log,
		rng: rand.New(rand.NewPCG(0x5745_4952, 1)), series: make(map[string]*series), nextDue: none,
	}
	ppw := int(p.size / p.slide)
	for _, a := range cfg.Aggregates {
		ag, _ := parseAggregate(a)
		p.aggs = append(p.aggs, ag)
		if ag.kind == aggPercentile {
			p.keep = max(1, cfg.MaxSamples/ppw)
		}
	}
	// Panes a tag may need: one window, the windows waiting for their
	// lateness or update horizon, and some room for clocks running ahead.
	p.maxPanes = ppw + int((p.lateness+p.horizon)/p.slide) + 64
	return p, nil
}

// Process adds matching samples to their windows and, unless pass_through
// is set, removes them from the batch. Bad samples, NaN and non-numeric
// values are not aggregated (counted as skipped); bools count as 0/1.
func (p *Processor) Process(batch []model.Sample) []model.Sample {
	n := 0
	for i := range batch {
		s := &batch[i]
		if p.match.Match(s.Path) {
			if tracked := p.add(s); tracked && !p.pass {
				continue
			}
		}
		if n != i {
			batch[n] = *s
		}
		n++
	}
	return batch[:n]
}

// floorTo aligns t down to a multiple of d, also for negative t.
func floorTo(t, d int64) int64 {
	m := t % d
	if m < 0 {
		m += d
	}
	return t - m
}

// add aggregates s; it reports false when the tag could not be tracked
// (max_tags), in which case the raw sample passes on.
func (p *Processor) add(s *model.Sample) bool {
	v, ok := s.Value.Float64()
	if !ok || s.Quality.Code == model.Bad || math.IsNaN(v) {
		p.skipped.Add(1)
		return true
	}
	se := p.series[s.Path]
	if se == nil {
		if len(p.series) >= p.maxTags {
			p.untracked.Add(1)
			return false
		}
		se = &series{outPaths: make([]string, len(p.aggs))}
		for i, a := range p.aggs {
			se.outPaths[i] = s.Path + "/" + a.name + "_" + p.label
		}
		p.series[s.Path] = se
		p.tags.Store(int64(len(p.series)))
	}
	ps := floorTo(s.SourceTime, p.slide)
	if se.emitted && ps+p.slide <= se.emittedEnd {
		// Some or all windows holding this pane were emitted already.
		fullyLate := ps+p.size <= se.emittedEnd
		switch {
		case !p.update && fullyLate:
			p.lateDropped.Add(1)
			return true
		case p.update && ps+p.size <= se.emittedEnd-p.horizon:
			p.lateDropped.Add(1) // beyond the update horizon
			return true
		case p.update:
			p.lateUpdates.Add(1)
			for end := ps + p.slide; end <= ps+p.size && end <= se.emittedEnd; end += p.slide {
				se.markDirty(end)
			}
			p.nextDue = math.MinInt64 // re-emit on the next Flush
		default:
			p.latePartial.Add(1) // counts only in the windows still open
		}
	}
	pn := se.pane(ps, p.maxPanes)
	if pn == nil {
		p.noRoom.Add(1)
		return true
	}
	if p.keep > 0 && pn.acc.n >= int64(p.keep) {
		p.sampled.Add(1)
	}
	pn.acc.add(v, s.SourceTime, s.Quality.Code == model.Uncertain, p.keep, p.rng)
	p.aggregated.Add(1)
	if ps+p.size > se.emittedEnd || !se.emitted {
		end := ps + p.slide
		if se.emitted {
			end = max(end, se.emittedEnd+p.slide)
		}
		if se.nextEnd == 0 || end < se.nextEnd {
			se.nextEnd = end
		}
		p.nextDue = min(p.nextDue, se.nextEnd+p.lateness)
	}
	return true
}

func (se *series) markDirty(end int64) {
	for _, e := range se.dirty {
		if e == end {
			return
		}
	}
	se.dirty = append(se.dirty, end)
}

// pane returns the pane starting at start, creating it in order; nil when
// the tag already holds maxPanes panes.
func (se *series) pane(start int64, maxPanes int) *pane {
	i := len(se.panes)
	for i > 0 && se.panes[i-1].start > start {
		i--
	}
	if i > 0 && se.panes[i-1].start == start {
		return &se.panes[i-1]
	}
	if len(se.panes) >= maxPanes {
		return nil
	}
	se.panes = append(se.panes, pane{})
	copy(se.panes[i+1:], se.panes[i:])
	se.panes[i] = pane{start: start}
	return &se.panes[i]
}

// Flush emits every window whose end + allowed_lateness ≤ now, and the
// corrections of windows updated by late samples.
func (p *Processor) Flush(now time.Time, out []model.Sample) []model.Sample {
	t := now.UnixNano()
	if t < p.nextDue {
		return out
	}
	next := int64(none)
	for _, se := range p.series {
		out = p.flushSeries(se, t, out)
		if se.nextEnd != 0 {
			next = min(next, se.nextEnd+p.lateness)
		}
	}
	p.nextDue = next
	return out
}

func (p *Processor) flushSeries(se *series, t int64, out []model.Sample) []model.Sample {
	for n := 0; se.nextEnd != 0 && se.nextEnd+p.lateness <= t && n < maxCatchUp; n++ {
		end := se.nextEnd
		out = p.emit(se, end, t, false, out)
		se.emitted, se.emittedEnd = true, end
		se.nextEnd = p.nextAfter(se)
	}
	for _, end := range se.dirty {
		out = p.emit(se, end, t, true, out)
	}
	se.dirty = se.dirty[:0]
	if se.emitted {
		// Drop panes no window will need again: all their windows are
		// emitted and, with late: update, past the horizon.
		k := 0
		for k < len(se.panes) && se.panes[k].start+p.size <= se.emittedEnd-p.horizon {
			k++
		}
		if k > 0 {
			se.panes = append(se.panes[:0], se.panes[k:]...)
		}
	}
	return out
}

// nextAfter is the end of the next window to emit after se.emittedEnd.
func (p *Processor) nextAfter(se *series) int64 {
	if p.emitEmpty {
		return se.emittedEnd + p.slide
	}
	for i := range se.panes {
		if ps := se.panes[i].start; ps+p.size > se.emittedEnd {
			return max(ps+p.slide, se.emittedEnd+p.slide)
		}
	}
	return 0
}

// emit appends the aggregates of the window ending at end.
func (p *Processor) emit(se *series, end, now int64, corrected bool, out []model.Sample) []model.Sample {
	w := &acc{}
	start := end - p.size
	p.sortBuf = p.sortBuf[:0]
	for i := range se.panes {
		pn := &se.panes[i]
		if pn.start >= start && pn.start < end {
			w.merge(&pn.acc)
			p.sortBuf = append(p.sortBuf, pn.acc.vals...)
		}
	}
	if w.n == 0 && !p.emitEmpty {
		return out
	}
	if p.keep > 0 {
		sortFloats(p.sortBuf)
	}
	var q model.Quality
	if w.uncertain {
		q = model.Quality{Code: model.Uncertain, Reason: ReasonUncertain}
	}
	for i, a := range p.aggs {
		s := model.Sample{Path: se.outPaths[i], Quality: q, SourceTime: end, EdgeTime: now, Historical: corrected}
		switch {
		case a.kind == aggCount:
			s.Value = model.Int(w.n)
		case a.kind == aggSum:
			s.Value = model.Float(w.sum)
		case w.n == 0:
			s.Quality = model.Quality{Code: model.Bad, Reason: ReasonEmpty}
		default:
			s.Value = model.Float(p.value(a, w))
		}
		out = append(out, s)
	}
	p.emitted.Add(1)
	return out
}

func (p *Processor) value(a aggregate, w *acc) float64 {
	switch a.kind {
	case aggMin:
		return w.min
	case aggMax:
		return w.max
	case aggMean:
		return w.mean
	case aggStddev:
		return w.stddev()
	case aggFirst:
		return w.first
	case aggLast:
		return w.last
	case aggPercentile:
		return percentile(p.sortBuf, a.q)
	}
	return math.NaN()
}

// Status reports the processor's counters; safe to call concurrently.
func (p *Processor) Status() pipeline.Status {
	return pipeline.Status{
		Counters: map[string]uint64{
			"aggregated":       p.aggregated.Load(),
			"skipped":          p.skipped.Load(),
			"late_dropped":     p.lateDropped.Load(),
			"late_partial":     p.latePartial.Load(),
			"late_updates":     p.lateUpdates.Load(),
			"no_room":          p.noRoom.Load(),
			"untracked":        p.untracked.Load(),
			"windows_emitted":  p.emitted.Load(),
			"reservoir_sample": p.sampled.Load(),
		},
		Gauges: map[string]float64{"tracked_tags": float64(p.tags.Load())},
	}
}
