package downsample

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

// none is the "nothing held" value of nextDue.
const none = math.MaxInt64

// Processor passes at most one sample per tag and epoch-aligned interval.
type Processor struct {
	match    *match.Matcher
	interval int64
	last     bool
	dropBad  bool
	maxTags  int
	log      *slog.Logger
	tags     map[string]*entry
	extra    []model.Sample // last mode: this batch's output for tracked tags
	// nextDue is a lower bound on the earliest end of an interval with a
	// held sample, so that most Flush calls return without a scan.
	nextDue int64

	// n counts on the hot path without atomics (Process and Flush never
	// run concurrently); publish copies it to pub for Status once per call.
	n   counts
	pub [numCounts]atomic.Uint64
}

// counts are the processor's counters; held and tracked are gauges.
type counts struct {
	passed, dropped, late, badPassed, badDropped, untracked uint64
	held, tracked                                           int64
}

const numCounts = 8

func (p *Processor) publish() {
	for i, v := range [numCounts]uint64{p.n.passed, p.n.dropped, p.n.late, p.n.badPassed, p.n.badDropped,
		p.n.untracked, uint64(p.n.held), uint64(p.n.tracked)} {
		p.pub[i].Store(v)
	}
}

var (
	_ pipeline.Processor      = (*Processor)(nil)
	_ pipeline.Flusher        = (*Processor)(nil)
	_ pipeline.StatusReporter = (*Processor)(nil)
)

// entry is the state of one tag: its newest interval and what happened
// to it.
type entry struct {
	slot  int64 // start of the tag's newest interval, ns
	state slotState
	held  model.Sample // last mode, state held: the newest sample of slot
}

type slotState uint8

const (
	open   slotState = iota // nothing passed for slot yet (new, or after a bad sample)
	passed                  // slot's sample went out: later ones in slot are dropped
	held                    // last mode: holding slot's newest sample
)

// New builds the processor; it validates cfg again.
func New(cfg Config, log *slog.Logger) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("downsample: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := match.Compile(cfg.Match)
	if err != nil {
		return nil, fmt.Errorf("downsample: %w", err)
	}
	return &Processor{
		match: m, interval: int64(cfg.Interval), last: cfg.Mode == ModeLast, dropBad: cfg.DropBad,
		maxTags: cfg.MaxTags, log: log, tags: make(map[string]*entry), nextDue: none,
	}, nil
}

// Process downsamples the matching samples. In first mode the first
// sample of each interval keeps its place in the batch and the rest are
// removed. In last mode every sample of a tracked tag is taken out of the
// batch; what goes on (the previous interval's held sample when a later
// interval begins, bad samples) is appended at the end in the tag's order
// with Seq 0, so the engine numbers it after the rest of the batch.
func (p *Processor) Process(batch []model.Sample) []model.Sample {
	p.extra = p.extra[:0]
	n := 0
	for i := range batch {
		s := &batch[i]
		if p.match.Match(s.Path) && !p.keep(s) {
			continue
		}
		if n != i {
			batch[n] = *s
		}
		n++
	}
	p.publish()
	if len(p.extra) == 0 {
		return batch[:n]
	}
	return append(batch[:n], p.extra...)
}

// floorTo aligns t down to a multiple of d, also for negative t.
func floorTo(t, d int64) int64 {
	m := t % d
	if m < 0 {
		m += d
	}
	return t - m
}

// keep decides on one matching sample: true leaves it in its place; false
// removes it (dropped, held, or moved to p.extra).
func (p *Processor) keep(s *model.Sample) bool {
	if s.Quality.Code == model.Bad {
		return p.bad(s)
	}
	slot := floorTo(s.SourceTime, p.interval)
	e := p.tags[s.Path]
	if e == nil {
		if len(p.tags) >= p.maxTags {
			p.n.untracked++
			return true
		}
		e = &entry{slot: slot}
		p.tags[s.Path] = e
		p.n.tracked = int64(len(p.tags))
	}
	switch {
	case slot < e.slot:
		// An interval this tag has left: passing it would put an older
		// value after a newer one.
		p.n.late++
		return false
	case slot > e.slot:
		if e.state == held {
			p.release(e)
		}
		e.slot, e.state = slot, open
	}
	if !p.last {
		if e.state == passed {
			p.n.dropped++
			return false
		}
		e.state = passed
		p.n.passed++
		return true
	}
	switch e.state {
	case passed:
		// The interval ended on the engine's clock and its sample went out.
		p.n.late++
	case held:
		if s.SourceTime < e.held.SourceTime {
			p.n.dropped++ // older than the one held: not the interval's last
			return false
		}
		p.n.dropped++ // the one held is superseded
		e.held = *s
	default:
		e.state, e.held = held, *s
		p.n.held++
		p.nextDue = min(p.nextDue, slot+p.interval)
	}
	return false
}

// bad handles a bad-quality sample: it passes (or is dropped with
// drop_bad) whatever the interval, and the tag's interval opens again, so
// that the first good sample after an outage goes on too. In last mode a
// held sample, older, goes out before it.
func (p *Processor) bad(s *model.Sample) bool {
	if p.dropBad {
		p.n.badDropped++
		return false
	}
	p.n.badPassed++
	e := p.tags[s.Path]
	if e == nil {
		return true // untracked: nothing of it waits in p.extra
	}
	if !p.last {
		e.state = open
		return true
	}
	if e.state == held {
		p.release(e)
	}
	e.state = open
	b := *s
	b.Seq = 0
	p.extra = append(p.extra, b)
	return false
}

// release appends e's held sample to p.extra with Seq 0: it was numbered
// in an earlier batch, and goes out after this one's samples.
func (p *Processor) release(e *entry) {
	s := e.held
	s.Seq = 0
	p.extra = append(p.extra, s)
	e.held, e.state = model.Sample{}, passed
	p.n.passed++
	p.n.held--
}

// Flush emits, in last mode, every held sample whose interval has ended
// by now on the engine's clock, with its own timestamps. First mode holds
// nothing.
func (p *Processor) Flush(now time.Time, out []model.Sample) []model.Sample {
	t := now.UnixNano()
	if t < p.nextDue {
		return out
	}
	next := int64(none)
	for _, e := range p.tags {
		if e.state != held {
			continue
		}
		if end := e.slot + p.interval; end > t {
			next = min(next, end)
			continue
		}
		h := e.held
		h.Seq = 0 // the engine numbers flushed samples
		out = append(out, h)
		e.held, e.state = model.Sample{}, passed
		p.n.passed++
		p.n.held--
	}
	p.nextDue = next
	p.publish()
	return out
}

// Status reports the processor's counters; safe to call concurrently.
func (p *Processor) Status() pipeline.Status {
	c := func(i int) uint64 { return p.pub[i].Load() }
	return pipeline.Status{
		Counters: map[string]uint64{
			"downsample_passed":      c(0),
			"downsample_dropped":     c(1),
			"downsample_late":        c(2),
			"downsample_bad_passed":  c(3),
			"downsample_bad_dropped": c(4),
			"untracked":              c(5),
		},
		Gauges: map[string]float64{
			"downsample_held": float64(int64(c(6))),
			"tracked_tags":    float64(int64(c(7))),
		},
	}
}
