package deadband

import (
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/match"
)

// Processor is a report-by-exception filter with a heartbeat.
type Processor struct {
	rules   []rule
	index   *match.Index
	maxTags int
	log     *slog.Logger
	tags    map[string]*entry
	// nextDue is a lower bound on the earliest heartbeat deadline, so that
	// most Flush calls return without scanning every tag. Zero: none.
	nextDue int64

	passed     atomic.Uint64
	suppressed atomic.Uint64
	heartbeats atomic.Uint64
	untracked  atomic.Uint64
	tracked    atomic.Int64
}

var (
	_ pipeline.Processor      = (*Processor)(nil)
	_ pipeline.Flusher        = (*Processor)(nil)
	_ pipeline.StatusReporter = (*Processor)(nil)
)

type rule struct {
	band    float64 // change must exceed this; 0 = any change
	silence int64   // ns; 0 = no heartbeat
}

// entry is what the filter remembers of one tag.
type entry struct {
	rule   *rule
	sent   model.Value   // value last passed on
	sentQ  model.Quality // quality last passed on
	sentAt int64         // when it was passed (edge time or flush time), ns
	last   model.Sample  // newest sample received, passed or not
}

// New builds the processor; it validates cfg again.
func New(cfg Config, log *slog.Logger) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("deadband: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Processor{maxTags: cfg.MaxTags, log: log, tags: make(map[string]*entry)}
	lists := make([][]string, len(cfg.Rules))
	for i, r := range cfg.Rules {
		lists[i] = r.Match
		band := r.Absolute
		if r.Percent > 0 {
			band = r.Percent / 100 * (r.Range.Max - r.Range.Min)
		}
		p.rules = append(p.rules, rule{band: band, silence: int64(r.MaxSilence)})
	}
	idx, err := match.NewIndex(lists)
	if err != nil {
		return nil, fmt.Errorf("deadband: %w", err)
	}
	p.index = idx
	return p, nil
}

// Process passes a matching sample only when its value moved beyond the
// deadband, its kind changed or its quality changed, compared with the last
// sample passed for the tag. The first sample of a tag always passes.
func (p *Processor) Process(batch []model.Sample) []model.Sample {
	n := 0
	for i := range batch {
		s := &batch[i]
		if p.keep(s) {
			if n != i {
				batch[n] = *s
			}
			n++
		}
	}
	return batch[:n]
}

func (p *Processor) keep(s *model.Sample) bool {
	ri := p.index.Lookup(s.Path)
	if ri < 0 {
		return true
	}
	e := p.tags[s.Path]
	if e == nil {
		if len(p.tags) >= p.maxTags {
			p.untracked.Add(1)
			return true
		}
		r := &p.rules[ri]
		e = &entry{rule: r}
		p.tags[s.Path] = e
		p.tracked.Store(int64(len(p.tags)))
		e.last = *s
		p.markSent(e, s.Value, s.Quality, stamp(s))
		return true
	}
	e.last = *s
	if s.Quality == e.sentQ && !changed(e.sent, s.Value, e.rule.band) {
		p.suppressed.Add(1)
		return false
	}
	p.markSent(e, s.Value, s.Quality, stamp(s))
	return true
}

func (p *Processor) markSent(e *entry, v model.Value, q model.Quality, at int64) {
	e.sent, e.sentQ, e.sentAt = v, q, at
	p.passed.Add(1)
	if e.rule.silence > 0 {
		if due := at + e.rule.silence; p.nextDue == 0 || due < p.nextDue {
			p.nextDue = due
		}
	}
}

// stamp is when a sample was passed on: its edge time, which sources take
// from the same wall clock as the engine's ticks.
func stamp(s *model.Sample) int64 {
	if s.EdgeTime != 0 {
		return s.EdgeTime
	}
	return s.SourceTime
}

// changed reports whether cur differs from prev enough to pass.
func changed(prev, cur model.Value, band float64) bool {
	if prev.Kind() != cur.Kind() {
		return true
	}
	k := cur.Kind()
	if band == 0 || (k != model.KindFloat && k != model.KindInt && k != model.KindUint) {
		return !prev.Equal(cur) // exact, also for integers beyond 2^53
	}
	a, _ := prev.Float64()
	b, _ := cur.Float64()
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return !prev.Equal(cur) // into or out of NaN always passes; NaN to the same NaN does not
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		return a != b
	}
	return math.Abs(b-a) > band
}

// Flush is the heartbeat: every tag whose rule has max_silence and that was
// not passed for that long is re-emitted as the newest sample received for
// it (even one the deadband suppressed), with its SourceTime unchanged and
// EdgeTime = now, and becomes the new reference for the deadband.
func (p *Processor) Flush(now time.Time, out []model.Sample) []model.Sample {
	t := now.UnixNano()
	if p.nextDue == 0 || t < p.nextDue {
		return out
	}
	var next int64
	for _, e := range p.tags {
		sil := e.rule.silence
		if sil == 0 {
			continue
		}
		if e.sentAt+sil <= t {
			hb := e.last
			hb.EdgeTime = t
			hb.Seq = 0 // the engine numbers flushed samples
			out = append(out, hb)
			e.sent, e.sentQ, e.sentAt = hb.Value, hb.Quality, t
			p.heartbeats.Add(1)
		}
		if due := e.sentAt + sil; next == 0 || due < next {
			next = due
		}
	}
	p.nextDue = next
	return out
}

// Status reports the processor's counters; safe to call concurrently.
func (p *Processor) Status() pipeline.Status {
	return pipeline.Status{
		Counters: map[string]uint64{
			"passed":     p.passed.Load(),
			"suppressed": p.suppressed.Load(),
			"heartbeats": p.heartbeats.Load(),
			"untracked":  p.untracked.Load(),
		},
		Gauges: map[string]float64{"tracked_tags": float64(p.tracked.Load())},
	}
}
