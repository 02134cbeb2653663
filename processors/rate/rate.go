package rate

import (
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/match"
)

// Processor computes a rate of change, moving average or EWMA per tag.
type Processor struct {
	match    *match.Matcher
	fn       string
	perSec   float64
	rollover uint64
	n        int
	alpha    float64
	replace  bool
	suffix   string
	maxTags  int
	log      *slog.Logger
	tags     map[string]*state
	extra    []model.Sample // derived samples of the current batch

	computed   atomic.Uint64
	outOfOrder atomic.Uint64
	rollovers  atomic.Uint64
	skipped    atomic.Uint64
	untracked  atomic.Uint64
	tracked    atomic.Int64
}

var (
	_ pipeline.Processor      = (*Processor)(nil)
	_ pipeline.StatusReporter = (*Processor)(nil)
)

// state is what the processor remembers of one tag.
type state struct {
	outPath string
	have    bool
	t       int64   // SourceTime of the last accepted sample
	f       float64 // its value as float
	u       uint64  // its value as integer, for exact counter deltas
	integer bool    // the last value was an int or uint
	// moving average
	ring []float64
	next int
	full bool
	sum  float64
	// ewma
	ewma float64
}

// New builds the processor; it validates cfg again.
func New(cfg Config, log *slog.Logger) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rate: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := match.Compile(cfg.Match)
	if err != nil {
		return nil, fmt.Errorf("rate: %w", err)
	}
	return &Processor{
		match: m, fn: cfg.Function, perSec: cfg.Per.Seconds(), rollover: cfg.Rollover,
		n: cfg.Samples, alpha: cfg.Alpha, replace: cfg.Replace, suffix: cfg.Output.PathSuffix,
		maxTags: cfg.MaxTags, log: log, tags: make(map[string]*state),
	}, nil
}

// Process computes the function for matching samples. With replace, the
// result replaces the value (as a float) and samples that yield no result
// — a tag's first sample for rate, out-of-order samples — are removed;
// otherwise inputs pass unchanged and results are appended to the batch.
// Bad, NaN and non-numeric samples pass unchanged and leave the state alone.
func (p *Processor) Process(batch []model.Sample) []model.Sample {
	p.extra = p.extra[:0]
	n := 0
	for i := range batch {
		s := &batch[i]
		keep := true
		if p.match.Match(s.Path) {
			if v, ok := p.compute(s); ok {
				if p.replace {
					s.Value = model.Float(v)
				} else {
					d := *s
					d.Path, d.Value, d.Seq = p.tags[s.Path].outPath, model.Float(v), 0 // the engine numbered the input, not this
					p.extra = append(p.extra, d)
				}
			} else if p.replace && p.tags[s.Path] != nil && usable(s) {
				keep = false // no result for this sample: nothing to say
			}
		}
		if keep {
			if n != i {
				batch[n] = *s
			}
			n++
		}
	}
	return append(batch[:n], p.extra...)
}

func usable(s *model.Sample) bool {
	if s.Quality.Code == model.Bad {
		return false
	}
	f, ok := s.Value.Float64()
	return ok && !math.IsNaN(f)
}

// compute updates the tag's state with s and returns the result, if any.
func (p *Processor) compute(s *model.Sample) (float64, bool) {
	if !usable(s) {
		p.skipped.Add(1)
		return 0, false
	}
	st := p.tags[s.Path]
	if st == nil {
		if len(p.tags) >= p.maxTags {
			p.untracked.Add(1)
			return 0, false
		}
		st = &state{}
		if !p.replace {
			st.outPath = s.Path + p.suffix
		}
		if p.fn == FuncMovingAverage {
			st.ring = make([]float64, p.n)
		}
		p.tags[s.Path] = st
		p.tracked.Store(int64(len(p.tags)))
	}
	f, _ := s.Value.Float64()
	t := s.SourceTime
	if st.have && (t < st.t || (p.fn == FuncRate && t == st.t)) {
		p.outOfOrder.Add(1) // rate needs dt > 0; smoothing needs order
		return 0, false
	}
	var out float64
	ok := true
	switch p.fn {
	case FuncRate:
		out, ok = p.rate(st, s, f)
	case FuncMovingAverage:
		out = st.average(f)
	case FuncEWMA:
		if !st.have {
			st.ewma = f
		} else {
			st.ewma += p.alpha * (f - st.ewma)
		}
		out = st.ewma
	}
	st.have, st.t, st.f = true, t, f
	if ok {
		p.computed.Add(1)
	}
	return out, ok
}

// rate is (value − previous) / dt, with counter rollover.
func (p *Processor) rate(st *state, s *model.Sample, f float64) (float64, bool) {
	k := s.Value.Kind()
	integer := k == model.KindUint || (k == model.KindInt && s.Value.AsInt() >= 0)
	var u uint64
	if integer {
		u = s.Value.AsUint()
		if k == model.KindInt {
			u = uint64(s.Value.AsInt())
		}
	}
	prevF, prevU, prevInt, first := st.f, st.u, st.integer, !st.have
	st.u, st.integer = u, integer
	if first {
		return 0, false
	}
	var delta float64
	switch {
	case integer && prevInt && u >= prevU:
		delta = float64(u - prevU) // exact even beyond 2^53
	case integer && prevInt && p.rollover > 0:
		// Wrapped past rollover: prev → rollover → 0 → u.
		p.rollovers.Add(1)
		delta = float64(p.rollover-prevU) + float64(u) + 1
	case integer && prevInt:
		delta = -float64(prevU - u)
	case f < prevF && p.rollover > 0:
		p.rollovers.Add(1)
		delta = (float64(p.rollover) - prevF) + f + 1
	default:
		delta = f - prevF
	}
	dt := float64(s.SourceTime-st.t) / 1e9
	return delta / dt * p.perSec, true
}

// average adds f to the ring and returns the mean of the values in it
// (fewer than N at the start). The running sum is recomputed whenever the
// ring wraps, so rounding errors cannot accumulate.
func (st *state) average(f float64) float64 {
	n := len(st.ring)
	if st.full {
		st.sum -= st.ring[st.next]
	}
	st.ring[st.next] = f
	st.sum += f
	st.next++
	if st.next == n {
		st.next, st.full = 0, true
		st.sum = 0
		for _, v := range st.ring {
			st.sum += v
		}
	}
	if st.full {
		return st.sum / float64(n)
	}
	return st.sum / float64(st.next)
}

// Status reports the processor's counters; safe to call concurrently.
func (p *Processor) Status() pipeline.Status {
	return pipeline.Status{
		Counters: map[string]uint64{
			"computed":     p.computed.Load(),
			"out_of_order": p.outOfOrder.Load(),
			"rollovers":    p.rollovers.Load(),
			"skipped":      p.skipped.Load(),
			"untracked":    p.untracked.Load(),
		},
		Gauges: map[string]float64{"tracked_tags": float64(p.tracked.Load())},
	}
}
