package rules

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/writegate"
)

// maxCascade bounds how many times samples appended by set actions are
// fed back to the rules within one batch, so rules setting each other's
// inputs cannot loop.
const maxCascade = 4

// Enqueuer accepts actions that must not run on the pipeline's goroutine
// (writes, HTTP calls); *Runner implements it. Enqueue must not block: it
// reports false when the action was dropped.
type Enqueuer interface {
	Enqueue(j Job) bool
}

// Deps are what the rules act on.
type Deps struct {
	// Alarms is required when a rule has an alarm action.
	Alarms *alarms.Manager
	// Actions is required when a rule has a write or http action.
	Actions Enqueuer
	// Now is the clock stamping write commands (IssuedAt) decided in
	// Process; default time.Now. Flush uses the engine's now.
	Now func() time.Time
}

// Processor evaluates the rules. It implements pipeline.Processor (rules
// whose inputs are in the batch), pipeline.Flusher (rules waiting on a
// `for` duration) and pipeline.StatusReporter. Alarm actions only Raise
// and Clear on the Manager; its events enter the flow through
// alarms.Stage, placed right after this processor.
type Processor struct {
	rules   []*rule
	byPath  map[string][]binding
	dirty   []*rule
	pending []*rule // rules waiting on `for`
	alarms  *alarms.Manager
	actions Enqueuer
	now     func() time.Time
	vm      vm.VM
	log     *slog.Logger

	evaluated, unknown, evalFailed atomic.Uint64
	rises, clears                  atomic.Uint64
	actionsDropped, actionFailed   atomic.Uint64
}

var (
	_ pipeline.Processor      = (*Processor)(nil)
	_ pipeline.Flusher        = (*Processor)(nil)
	_ pipeline.StatusReporter = (*Processor)(nil)
)

type binding struct {
	rule *rule
	v    int
}

type phase uint8

const (
	idle    phase = iota // condition false (or never known)
	waiting              // condition true, `for` not yet elapsed
	active               // fired, not yet cleared
)

// rule is one compiled Rule and its state.
type rule struct {
	name    string
	idx     int
	when    *vm.Program
	clear   *vm.Program // nil: clears when `when` is false
	forDur  time.Duration
	names   []string
	types   []string
	env     map[string]any
	seen    []bool
	bad     []bool
	rise    []action
	onClear []action
	alarm   string // name of the alarm it raises, if any

	phase  phase
	known  bool  // evaluated with good inputs at least once
	since  int64 // when the condition became true (ns)
	lastAt int64 // newest input time (ns)
	dirty  bool
	queued bool // in Processor.pending
}

// action is one compiled Action.
type action struct {
	kind   string // set, alarm, event, write, http
	path   string
	value  model.Value
	prog   *vm.Program // value expression, when not a constant
	alarm  alarms.Def
	http   *HTTPAction
	reason string
}

// New compiles every rule once, defines their alarms in deps.Alarms and
// indexes the rules by input path.
func New(cfg Config, deps Deps, log *slog.Logger) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	p := &Processor{byPath: map[string][]binding{}, alarms: deps.Alarms, actions: deps.Actions, now: deps.Now, log: log}
	for i := range cfg.Rules {
		r, err := p.build(&cfg.Rules[i], i)
		if err != nil {
			return nil, fmt.Errorf("rules: rule %q: %w", cfg.Rules[i].Name, err)
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func (p *Processor) build(c *Rule, idx int) (*rule, error) {
	r := &rule{name: c.Name, idx: idx, forDur: c.For, env: make(map[string]any, len(c.Vars))}
	var err error
	if r.when, err = compileBool(c, "when", c.When); err != nil {
		return nil, err
	}
	if h := c.Hysteresis; h != nil {
		if h.ClearWhen != "" {
			r.clear, err = compileBool(c, "hysteresis.clear_when", h.ClearWhen)
		} else {
			r.clear, err = deadbandClear(c)
		}
		if err != nil {
			return nil, err
		}
	}
	for i, name := range sortedKeys(c.Vars) {
		typ := typeOf(c, name)
		r.names = append(r.names, name)
		r.types = append(r.types, typ)
		r.env[name] = zeroOf(typ)
		p.byPath[c.Vars[name]] = append(p.byPath[c.Vars[name]], binding{rule: r, v: i})
	}
	r.seen = make([]bool, len(r.names))
	r.bad = make([]bool, len(r.names))
	if r.rise, err = p.buildActions(c, r, c.Actions); err != nil {
		return nil, err
	}
	if r.onClear, err = p.buildActions(c, r, c.OnClear); err != nil {
		return nil, err
	}
	return r, nil
}

func (p *Processor) buildActions(c *Rule, r *rule, list []Action) ([]action, error) {
	var out []action
	for _, a := range list {
		var x action
		var err error
		switch {
		case a.Set != nil:
			x = action{kind: "set", path: a.Set.Path}
			x.value, x.prog, err = valueOrExpr(c, "set.expr", a.Set.Value, a.Set.Expr)
		case a.Write != nil:
			if p.actions == nil {
				return nil, errors.New("a write action needs the action runner (Deps.Actions)")
			}
			x = action{kind: "write", path: a.Write.Path, reason: "rule " + c.Name}
			x.value, x.prog, err = valueOrExpr(c, "write.expr", a.Write.Value, a.Write.Expr)
		case a.Event != nil:
			var s string
			s, err = payloadString(a.Event.Payload)
			x = action{kind: "event", path: a.Event.Path, value: model.String(s)}
		case a.Alarm != nil:
			if p.alarms == nil {
				return nil, errors.New("an alarm action needs the alarm manager (Deps.Alarms)")
			}
			prio := alarms.Priority(a.Alarm.Priority)
			if prio == "" {
				prio = alarms.Medium
			}
			x = action{kind: "alarm", alarm: alarms.Def{Name: a.Alarm.Name, Priority: prio, Message: a.Alarm.Message, Rule: c.Name}}
			if err = p.alarms.Define(x.alarm); err == nil {
				r.alarm = a.Alarm.Name
			}
		case a.HTTP != nil:
			if p.actions == nil {
				return nil, errors.New("an http action needs the action runner (Deps.Actions)")
			}
			h := *a.HTTP
			if h.Method == "" {
				h.Method = "POST"
			}
			x = action{kind: "http", http: &h}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func valueOrExpr(c *Rule, key string, v any, text string) (model.Value, *vm.Program, error) {
	if text != "" {
		prog, err := compileValue(c, key, text)
		return model.Value{}, prog, err
	}
	val, err := constValue(v)
	return val, nil, err
}

// Process records the rules' inputs found in batch, evaluates every rule
// an input of which changed (each at most once per pass, in configuration
// order) and appends what their actions produce: set and event samples,
// and alarm events. Samples appended by set actions feed the rules again
// (at most maxCascade passes). Writes and HTTP calls are queued, never
// run here. Historical (replayed) samples are ignored: a rule acts on the
// present.
func (p *Processor) Process(batch []model.Sample) []model.Sample {
	if len(p.byPath) > 0 {
		var now time.Time // read lazily: most batches fire nothing
		start := 0
		for pass := 0; pass < maxCascade && start < len(batch); pass++ {
			end := len(batch)
			for i := start; i < end; i++ {
				s := &batch[i]
				if s.Historical {
					continue
				}
				if bs, ok := p.byPath[s.Path]; ok {
					for _, b := range bs {
						p.update(b, s)
					}
				}
			}
			start = end
			if len(p.dirty) == 0 {
				break
			}
			if len(p.dirty) > 1 {
				slices.SortFunc(p.dirty, func(a, b *rule) int { return a.idx - b.idx })
			}
			for _, r := range p.dirty {
				r.dirty = false
				batch = p.evaluate(r, &now, batch)
			}
			clear(p.dirty)
			p.dirty = p.dirty[:0]
		}
	}
	return batch
}

// update stores one input sample as var b.v of its rule.
func (p *Processor) update(b binding, s *model.Sample) {
	r := b.rule
	r.seen[b.v] = true
	t := s.SourceTime
	if t == 0 {
		t = s.EdgeTime
	}
	r.lastAt = max(r.lastAt, t)
	r.bad[b.v] = true
	if s.Quality.Code != model.Bad {
		if v, ok := convert(s.Value, r.types[b.v]); ok {
			r.env[r.names[b.v]] = v
			r.bad[b.v] = false
		}
	}
	if !r.dirty {
		r.dirty = true
		p.dirty = append(p.dirty, r)
	}
}

// test evaluates a condition; ok is false when an input is missing or bad
// or the evaluation failed: the rule's state is unknown.
func (p *Processor) test(r *rule, prog *vm.Program) (result, ok bool) {
	for i := range r.seen {
		if !r.seen[i] || r.bad[i] {
			p.unknown.Add(1)
			return false, false
		}
	}
	out, err := p.run(prog, r.env)
	b, isBool := out.(bool)
	if err != nil || !isBool {
		p.evalFailed.Add(1)
		return false, false
	}
	return b, true
}

func (p *Processor) run(prog *vm.Program, env map[string]any) (out any, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			out, err = nil, fmt.Errorf("panic: %v", rec)
		}
	}()
	return p.vm.Run(prog, env)
}

// evaluate moves r through idle → waiting → active → idle. An unknown
// condition (bad input) cancels a wait and holds an active rule.
func (p *Processor) evaluate(r *rule, now *time.Time, batch []model.Sample) []model.Sample {
	p.evaluated.Add(1)
	at := r.lastAt
	if r.phase == active {
		prog, want := r.when, false
		if r.clear != nil {
			prog, want = r.clear, true
		}
		v, ok := p.test(r, prog)
		if ok && v == want {
			return p.fire(r, false, at, p.lazyNow(now), batch)
		}
		return batch
	}
	cond, ok := p.test(r, r.when)
	if !ok {
		r.phase = idle
		return batch
	}
	if !r.known {
		r.known = true
		// An alarm restored active from an earlier run clears when its
		// condition is found false.
		if !cond && r.alarm != "" {
			_, _ = p.alarms.Clear(r.alarm, model.Time(at))
		}
	}
	switch {
	case !cond:
		r.phase = idle
	case r.phase == idle && r.forDur <= 0:
		return p.fire(r, true, at, p.lazyNow(now), batch)
	case r.phase == idle:
		r.phase, r.since = waiting, at
		if !r.queued {
			r.queued = true
			p.pending = append(p.pending, r)
		}
	case at-r.since >= int64(r.forDur):
		return p.fire(r, true, r.since+int64(r.forDur), p.lazyNow(now), batch)
	}
	return batch
}

func (p *Processor) lazyNow(now *time.Time) time.Time {
	if now.IsZero() {
		*now = p.now()
	}
	return *now
}

// Flush fires rules whose condition has held for their `for` duration by
// now (the engine's clock). The alarm events it raises leave through
// alarms.Stage, next in the chain.
func (p *Processor) Flush(now time.Time, out []model.Sample) []model.Sample {
	if len(p.pending) > 0 {
		keep := p.pending[:0]
		for _, r := range p.pending {
			switch {
			case r.phase != waiting:
				r.queued = false
			case now.UnixNano()-r.since >= int64(r.forDur):
				r.queued = false
				out = p.fire(r, true, r.since+int64(r.forDur), now, out)
			default:
				keep = append(keep, r)
			}
		}
		clear(p.pending[len(keep):])
		p.pending = keep
	}
	return out
}

// fire runs r's actions for a rising (or clearing) edge at `at` (ns);
// now stamps write commands.
func (p *Processor) fire(r *rule, rising bool, at int64, now time.Time, out []model.Sample) []model.Sample {
	list := r.onClear
	if rising {
		r.phase = active
		list = r.rise
		p.rises.Add(1)
	} else {
		r.phase = idle
		p.clears.Add(1)
		if r.alarm != "" {
			_, _ = p.alarms.Clear(r.alarm, model.Time(at))
		}
	}
	edge := "clear"
	if rising {
		edge = "rise"
	}
	p.log.Debug("rule "+edge, "rule", r.name)
	for i := range list {
		a := &list[i]
		switch a.kind {
		case "alarm":
			_, _ = p.alarms.Raise(a.alarm.Name, model.Time(at))
		case "set", "event", "write":
			v, ok := p.value(r, a)
			if !ok {
				continue
			}
			if a.kind == "write" {
				p.enqueue(Job{Rule: r.name, Write: &writegate.Request{Path: a.path, Value: v,
					Caller: "rule:" + r.name, IssuedAt: now, Reason: a.reason + " " + edge}})
				continue
			}
			out = append(out, model.Sample{Path: a.path, Value: v, SourceTime: at, EdgeTime: now.UnixNano()})
		case "http":
			p.enqueue(Job{Rule: r.name, HTTP: &HTTPCall{Action: *a.http, Edge: edge, Time: model.Time(at)}})
		}
	}
	return out
}

// value is an action's constant or its expression's result now.
func (p *Processor) value(r *rule, a *action) (model.Value, bool) {
	if a.prog == nil {
		return a.value, true
	}
	out, err := p.run(a.prog, r.env)
	if err == nil {
		if v, ok := toValue(out); ok {
			return v, true
		}
	}
	p.actionFailed.Add(1)
	p.log.Warn("rule action value failed", "rule", r.name, "path", a.path, "err", err)
	return model.Value{}, false
}

func (p *Processor) enqueue(j Job) {
	if !p.actions.Enqueue(j) {
		p.actionsDropped.Add(1)
	}
}

// Status reports the processor's counters; safe to call concurrently.
func (p *Processor) Status() pipeline.Status {
	return pipeline.Status{Name: "rules", Counters: map[string]uint64{
		"evaluated":       p.evaluated.Load(),
		"unknown":         p.unknown.Load(),
		"eval_failed":     p.evalFailed.Load(),
		"rises":           p.rises.Load(),
		"clears":          p.clears.Load(),
		"actions_dropped": p.actionsDropped.Load(),
		"action_failed":   p.actionFailed.Load(),
	}}
}
