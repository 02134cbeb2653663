package scale

import (
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"

	"github.com/weir-edge/weir/internal/decimal"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/match"
)

// Processor applies the first matching rule to each sample.
type Processor struct {
	rules []rule
	index *match.Index
	log   *slog.Logger

	outOfRange atomic.Uint64
	nans       atomic.Uint64
	castFailed atomic.Uint64
	dropped    atomic.Uint64
}

var (
	_ pipeline.Processor      = (*Processor)(nil)
	_ pipeline.StatusReporter = (*Processor)(nil)
)

// rule is a compiled Rule. Scale, offset and unit conversion fold into one
// affine map a*v+b, so the arithmetic costs the same whatever is set; it
// is computed decimal-faithfully (-82 × 0.01 is -0.82, see
// internal/decimal).
type rule struct {
	affine      bool
	a, b        float64
	aff         decimal.Affine
	nan         string
	clamp       bool
	min, max    float64 // ±Inf when a bound is not set
	clampAction string
	cast        *caster
}

// New compiles cfg; it validates again so that a caller that skipped
// Validate still gets an error rather than a half-built processor.
func New(cfg Config, log *slog.Logger) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Processor{log: log}
	lists := make([][]string, len(cfg.Rules))
	for i, r := range cfg.Rules {
		lists[i] = r.Match
		c := rule{a: 1, nan: r.NaN, min: math.Inf(-1), max: math.Inf(1)}
		if r.Scale != nil {
			c.affine, c.a = true, *r.Scale
		}
		if r.Offset != nil {
			c.affine, c.b = true, *r.Offset
		}
		if r.Convert != nil {
			from, _ := lookupUnit(r.Convert.From)
			to, _ := lookupUnit(r.Convert.To)
			ca, cb := conversion(from, to)
			// convert(a*v+b) = ca*(a*v+b)+cb. The table's constants
			// are exact decimals; composing them leaves float noise
			// (°C→°F: 1.7999999999999998, 32.00000000000004) that Snap
			// removes, so decimal inputs still give decimal outputs.
			magB := math.Abs(ca*c.b) + (math.Abs(from.offset)+math.Abs(to.offset))/math.Abs(to.factor)
			c.affine, c.a, c.b = true, decimal.Snap(ca*c.a, 0), decimal.Snap(ca*c.b+cb, magB)
		}
		if r.Clamp != nil {
			c.clamp, c.clampAction = true, r.Clamp.Action
			if r.Clamp.Min != nil {
				c.min = *r.Clamp.Min
			}
			if r.Clamp.Max != nil {
				c.max = *r.Clamp.Max
			}
		}
		if r.Cast != nil {
			c.cast = newCaster(r.Cast)
		}
		c.aff = decimal.NewAffine(c.a, c.b)
		p.rules = append(p.rules, c)
	}
	idx, err := match.NewIndex(lists)
	if err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	p.index = idx
	return p, nil
}

// Process transforms matching samples in place and drops those a rule says
// to drop; the rest pass untouched.
func (p *Processor) Process(batch []model.Sample) []model.Sample {
	n := 0
	for i := range batch {
		s := &batch[i]
		if r := p.index.Lookup(s.Path); r >= 0 && !p.apply(&p.rules[r], s) {
			p.dropped.Add(1)
			continue
		}
		if n != i {
			batch[n] = *s
		}
		n++
	}
	return batch[:n]
}

// apply runs one rule on s and reports whether s is kept.
func (p *Processor) apply(r *rule, s *model.Sample) bool {
	k := s.Value.Kind()
	numeric := k == model.KindInt || k == model.KindUint || k == model.KindFloat
	if r.affine && numeric {
		f, _ := s.Value.Float64()
		s.Value = model.Float(r.aff.Apply(f))
		k = model.KindFloat
	}
	if k == model.KindFloat {
		if f := s.Value.AsFloat(); math.IsNaN(f) {
			p.nans.Add(1)
			switch r.nan {
			case "drop":
				return false
			case "bad":
				worsen(&s.Quality, model.Bad, ReasonNaN)
			}
		}
	}
	if r.clamp && numeric {
		if !p.clamp(r, s) {
			return false
		}
	}
	if r.cast != nil && k != model.KindInvalid {
		v, reason := r.cast.cast(s.Value)
		s.Value = v
		if reason != "" {
			p.castFailed.Add(1)
			worsen(&s.Quality, model.Bad, reason)
		}
	}
	return true
}

// clamp applies the clamp rule to a numeric sample. NaN compares false on
// both sides, so it is never out of range: the nan policy handles it.
func (p *Processor) clamp(r *rule, s *model.Sample) bool {
	f, _ := s.Value.Float64()
	bound, reason := 0.0, ""
	switch {
	case f < r.min:
		bound, reason = r.min, ReasonBelowMin
	case f > r.max:
		bound, reason = r.max, ReasonAboveMax
	default:
		return true
	}
	p.outOfRange.Add(1)
	switch r.clampAction {
	case "drop":
		return false
	case "uncertain":
		worsen(&s.Quality, model.Uncertain, reason)
	case "bad":
		worsen(&s.Quality, model.Bad, reason)
	default:
		s.Value = clampedValue(s.Value.Kind(), bound, reason == ReasonBelowMin)
	}
	return true
}

// clampedValue is bound in the kind of the value it replaces: an integer
// stays an integer, rounded towards the inside of the range and saturated.
func clampedValue(k model.Kind, bound float64, isMin bool) model.Value {
	if k == model.KindFloat {
		return model.Float(bound)
	}
	if isMin {
		bound = math.Ceil(bound)
	} else {
		bound = math.Floor(bound)
	}
	c := caster{round: math.Trunc, saturate: true}
	if k == model.KindUint {
		v, _ := c.floatToUint(bound)
		return v
	}
	v, _ := c.floatToInt(bound)
	return v
}

// worsen lowers q to code with reason; it never raises a quality, so a bad
// sample stays bad with its original reason.
func worsen(q *model.Quality, code model.QualityCode, reason string) {
	if code > q.Code {
		q.Code, q.Reason = code, reason
	}
}

// Status reports the processor's counters; safe to call concurrently.
func (p *Processor) Status() pipeline.Status {
	return pipeline.Status{Counters: map[string]uint64{
		"out_of_range": p.outOfRange.Load(),
		"nan":          p.nans.Load(),
		"cast_failed":  p.castFailed.Load(),
		"dropped":      p.dropped.Load(),
	}}
}
