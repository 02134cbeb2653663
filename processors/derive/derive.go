package derive

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Reasons set on derived samples that could not be computed.
const (
	ReasonNonFinite   = "non-finite result"
	ReasonNotInteger  = "result is not an integer in range"
	ReasonWrongResult = "result has the wrong type"
)

// Processor computes derived tags and appends them to the batch.
type Processor struct {
	tags   []*derived
	byPath map[string][]binding
	vm     vm.VM
	log    *slog.Logger

	computed   atomic.Uint64
	evalFailed atomic.Uint64
	badInputs  atomic.Uint64
}

var (
	_ pipeline.Processor      = (*Processor)(nil)
	_ pipeline.StatusReporter = (*Processor)(nil)
)

// binding says which var of which derived tag an input path feeds.
type binding struct {
	tag *derived
	v   int
}

// derived is one compiled Tag and the latest values of its inputs.
type derived struct {
	path  string
	prog  *vm.Program
	out   string // result type
	all   bool   // on: all
	names []string
	types []string
	env   map[string]any // latest converted values, handed to the VM
	vars  []varState
	// badReason[i] is the reason of an output made bad by var i, built
	// once so that a bad input does not allocate per sample.
	badReason       []string
	uncertainReason []string
	mismatchReason  []string
	triggered       bool
}

type varState struct {
	seen     bool
	fresh    bool // updated since the last computation
	mismatch bool // the value does not fit the declared type
	q        model.Quality
	src      int64
	edge     int64
}

// New compiles every expression once.
func New(cfg Config, log *slog.Logger) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("derive: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Processor{byPath: make(map[string][]binding), log: log}
	for _, t := range cfg.Tags {
		prog, err := compile(t)
		if err != nil {
			return nil, fmt.Errorf("derive: %w", err)
		}
		d := &derived{path: t.Path, prog: prog, out: t.Type, all: t.On == "all", env: make(map[string]any, len(t.Vars))}
		for i, name := range sortedKeys(t.Vars) {
			typ := typeOf(t, name)
			d.names = append(d.names, name)
			d.types = append(d.types, typ)
			d.badReason = append(d.badReason, "input "+name+" bad")
			d.uncertainReason = append(d.uncertainReason, "input "+name+" uncertain")
			d.mismatchReason = append(d.mismatchReason, "input "+name+" does not fit type "+typ)
			d.env[name] = zeroOf(typ)
			p.byPath[t.Vars[name]] = append(p.byPath[t.Vars[name]], binding{tag: d, v: i})
		}
		d.vars = make([]varState, len(d.names))
		p.tags = append(p.tags, d)
	}
	return p, nil
}

// Process records the inputs in batch, then computes each derived tag that
// an input triggered, in configuration order, and appends the results.
// Every derived tag is computed at most once per batch, so inputs that
// arrive together (one poll) produce one result, not one per input. A
// derived tag may feed tags defined after it in the same batch.
func (p *Processor) Process(batch []model.Sample) []model.Sample {
	if len(p.byPath) == 0 {
		return batch
	}
	for i := range batch {
		if bs, ok := p.byPath[batch[i].Path]; ok {
			for _, b := range bs {
				p.update(b, &batch[i])
			}
		}
	}
	for _, d := range p.tags {
		if !d.triggered {
			continue
		}
		d.triggered = false
		s, ok := p.compute(d)
		if !ok {
			continue
		}
		batch = append(batch, s)
		for _, b := range p.byPath[s.Path] {
			p.update(b, &batch[len(batch)-1])
		}
	}
	return batch
}

// update stores one input sample as var b.v of its derived tag.
func (p *Processor) update(b binding, s *model.Sample) {
	d := b.tag
	vs := &d.vars[b.v]
	vs.seen, vs.fresh = true, true
	vs.q, vs.src, vs.edge, vs.mismatch = s.Quality, s.SourceTime, s.EdgeTime, false
	if s.Quality.Code != model.Bad {
		if v, ok := convert(s.Value, d.types[b.v]); ok {
			d.env[d.names[b.v]] = v
		} else {
			// A value the declared type cannot hold (a string for a
			// float, a fraction for an int) counts as a bad input.
			vs.q.Code, vs.mismatch = model.Bad, true
		}
	}
	if !d.all {
		d.triggered = true
		return
	}
	for i := range d.vars {
		if !d.vars[i].fresh {
			return
		}
	}
	d.triggered = true
}

// compute evaluates d over its latest inputs. ok is false while some input
// has never been seen.
func (p *Processor) compute(d *derived) (s model.Sample, ok bool) {
	s.Path = d.path
	worst := -1
	for i := range d.vars {
		vs := &d.vars[i]
		if !vs.seen {
			return s, false
		}
		s.SourceTime = max(s.SourceTime, vs.src)
		s.EdgeTime = max(s.EdgeTime, vs.edge)
		if worst < 0 || vs.q.Code > d.vars[worst].q.Code {
			worst = i
		}
	}
	for i := range d.vars {
		d.vars[i].fresh = false
	}
	p.computed.Add(1)
	switch d.vars[worst].q.Code {
	case model.Bad:
		p.badInputs.Add(1)
		s.Quality = model.Quality{Code: model.Bad, Reason: d.badReason[worst]}
		if d.vars[worst].mismatch {
			s.Quality.Reason = d.mismatchReason[worst]
		}
		return s, true
	case model.Uncertain:
		s.Quality = model.Quality{Code: model.Uncertain, Reason: d.uncertainReason[worst]}
	}
	out, err := p.run(d)
	if err != nil {
		p.evalFailed.Add(1)
		msg := err.Error()
		var fe *file.Error
		if errors.As(err, &fe) {
			msg = fe.Message // without the multi-line snippet
		}
		s.Quality = model.Quality{Code: model.Bad, Reason: "expression: " + msg}
		return s, true
	}
	v, reason := result(out, d.out)
	if reason != "" {
		p.evalFailed.Add(1)
		s.Quality = model.Quality{Code: model.Bad, Reason: reason}
		return s, true
	}
	s.Value = v
	return s, true
}

// run evaluates d; a panic in the VM becomes an error so that one broken
// expression cannot fail the whole batch.
func (p *Processor) run(d *derived) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return p.vm.Run(d.prog, d.env)
}

// convert turns an input value into the Go value of the declared type.
func convert(v model.Value, typ string) (any, bool) { return model.ToGo(v, typ) }

// result turns the VM's answer into a Value of the tag's type; a non-empty
// reason makes the sample bad. Non-finite floats (division by zero gives
// ±Inf in expr, 0/0 NaN) are bad rather than passed on.
func result(out any, typ string) (model.Value, string) {
	var f float64
	isNum := true
	var i int64
	isInt := true
	switch x := out.(type) {
	case float64:
		f, isInt = x, false
	case float32:
		f, isInt = float64(x), false
	case int:
		i = int64(x)
	case int64:
		i = x
	case int32:
		i = int64(x)
	case uint64:
		if typ == "uint" {
			return model.Uint(x), ""
		}
		if x > math.MaxInt64 {
			if typ == "float" {
				return model.Float(float64(x)), ""
			}
			return model.Value{}, ReasonNotInteger
		}
		i = int64(x)
	case uint:
		i = int64(x)
	case bool:
		isNum = false
		if typ == "bool" {
			return model.Bool(x), ""
		}
	case string:
		isNum = false
		if typ == "string" {
			return model.String(x), ""
		}
	default:
		isNum = false
	}
	if !isNum {
		return model.Value{}, ReasonWrongResult
	}
	if isInt {
		f = float64(i)
	}
	switch typ {
	case "float":
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return model.Value{}, ReasonNonFinite
		}
		return model.Float(f), ""
	case "int":
		if isInt {
			return model.Int(i), ""
		}
		if f != math.Trunc(f) || f < -9223372036854775808.0 || f >= 9223372036854775808.0 {
			return model.Value{}, ReasonNotInteger
		}
		return model.Int(int64(f)), ""
	case "uint":
		if isInt {
			if i < 0 {
				return model.Value{}, ReasonNotInteger
			}
			return model.Uint(uint64(i)), ""
		}
		if f != math.Trunc(f) || f < 0 || f >= 18446744073709551616.0 {
			return model.Value{}, ReasonNotInteger
		}
		return model.Uint(uint64(f)), ""
	}
	return model.Value{}, ReasonWrongResult
}

// Status reports the processor's counters; safe to call concurrently.
func (p *Processor) Status() pipeline.Status {
	return pipeline.Status{Counters: map[string]uint64{
		"computed":    p.computed.Load(),
		"eval_failed": p.evalFailed.Load(),
		"bad_inputs":  p.badInputs.Load(),
	}}
}
