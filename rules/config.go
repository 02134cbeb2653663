package rules

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/model"
)

// Defaults of the action runner, applied by NewRunner.
const (
	DefaultWorkers      = 4
	DefaultQueueSize    = 1024
	DefaultWriteTimeout = 10 * time.Second
	DefaultHTTPTimeout  = 5 * time.Second
	// maxWorkers bounds the pool: writes are serialised per device anyway.
	maxWorkers = 64
)

// Config holds the top-level `rules:` list and the `rule_actions:`
// settings of the runner; the loader inlines it into the node's config.
type Config struct {
	Rules   []Rule        `yaml:"rules"`
	Actions ActionsConfig `yaml:"rule_actions"`
}

// Rule is a condition over tags and what to do when it becomes true (and,
// optionally, when it clears).
type Rule struct {
	// Name identifies the rule: in logs, in the write gate's caller
	// ("rule:<name>") and in the audit trail. Letters, digits, '_', '-',
	// '.'.
	Name string `yaml:"name"`
	// When is a boolean expression (github.com/expr-lang/expr) over the
	// names in Vars.
	When string `yaml:"when"`
	// Vars maps expression names to tag paths.
	Vars map[string]string `yaml:"vars"`
	// VarTypes declares a var's type: float (default), int, uint, bool or
	// string.
	VarTypes map[string]string `yaml:"var_types"`
	// For is how long When must hold before the rule fires (0: at once).
	For time.Duration `yaml:"for"`
	// Hysteresis delays the clear; without it the rule clears as soon as
	// When is false.
	Hysteresis *Hysteresis `yaml:"hysteresis"`
	// Actions run on the rising edge (When true, held for For).
	Actions []Action `yaml:"actions"`
	// OnClear runs when the rule clears. An alarm of Actions clears by
	// itself and is not repeated here.
	OnClear []Action `yaml:"on_clear"`
}

// Hysteresis says when an active rule clears: ClearWhen (an expression
// over the same vars) or Deadband (for a When of the form `a > b`, `a >=
// b`, `a < b` or `a <= b`: the threshold b moves by Deadband towards the
// normal side, so `t > 90` with deadband 2 clears when t <= 88).
type Hysteresis struct {
	ClearWhen string  `yaml:"clear_when"`
	Deadband  float64 `yaml:"deadband"`
}

// Action is one thing a rule does; exactly one key is set.
type Action struct {
	Set   *SetAction   `yaml:"set"`
	Alarm *AlarmAction `yaml:"alarm"`
	Event *EventAction `yaml:"event"`
	Write *WriteAction `yaml:"write"`
	HTTP  *HTTPAction  `yaml:"http"`
}

// SetAction appends a sample of a derived tag to the batch: Value (a YAML
// scalar) or Expr (over the rule's vars).
type SetAction struct {
	Path  string `yaml:"path"`
	Value any    `yaml:"value"`
	Expr  string `yaml:"expr"`
}

// AlarmAction raises the named alarm on the rising edge and clears it
// when the rule clears.
type AlarmAction struct {
	Name string `yaml:"name"`
	// Priority: low, medium (default), high or critical.
	Priority string `yaml:"priority"`
	Message  string `yaml:"message"`
}

// EventAction sends a sample to the sinks: Payload as is when it is a
// string, else encoded as JSON.
type EventAction struct {
	Path    string `yaml:"path"`
	Payload any    `yaml:"payload"`
}

// WriteAction writes a tag through the write gate as caller
// "rule:<name>": Value or Expr.
type WriteAction struct {
	Path  string `yaml:"path"`
	Value any    `yaml:"value"`
	Expr  string `yaml:"expr"`
}

// HTTPAction calls a URL (a webhook). Body is sent as is; empty sends a
// JSON description of the edge (see README).
type HTTPAction struct {
	URL     string            `yaml:"url"`
	Method  string            `yaml:"method"`
	Body    string            `yaml:"body"`
	Headers map[string]string `yaml:"headers"`
	// AllowInsecure accepts an Authorization header over http:// to
	// another machine (warned at every start); without it that is an error.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// ActionsConfig sizes the runner serving write and http actions.
type ActionsConfig struct {
	// Workers is the number of goroutines serving the queue; default 4.
	Workers int `yaml:"workers"`
	// QueueSize bounds the queue; a full queue drops (and counts) actions
	// rather than block the pipeline. Default 1024.
	QueueSize int `yaml:"queue_size"`
	// WriteTimeout bounds one gate write (with read-back); default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// HTTPTimeout bounds one http action; default 5s.
	HTTPTimeout time.Duration `yaml:"http_timeout"`
	// TLS for https:// actions.
	TLS tlsconf.Config `yaml:"tls"`
}

func (c *ActionsConfig) setDefaults() {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = DefaultHTTPTimeout
	}
}

// Validate checks the settings as written.
func (c *ActionsConfig) Validate() error {
	var errs conf.Errors
	if c.Workers < 0 || c.Workers > maxWorkers {
		errs.Addf("workers", "must be 0..%d", maxWorkers)
	}
	if c.QueueSize < 0 {
		errs.Addf("queue_size", "must not be negative")
	}
	if c.WriteTimeout < 0 {
		errs.Addf("write_timeout", "must not be negative")
	}
	if c.HTTPTimeout < 0 {
		errs.Addf("http_timeout", "must not be negative")
	}
	errs.AddPrefixed("tls", c.TLS.Validate())
	return errs.Err()
}

var (
	types      = []string{"float", "int", "uint", "bool", "string"}
	priorities = []string{"low", "medium", "high", "critical"}
	methods    = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
)

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// Validate checks every rule as written and compiles its expressions
// against the declared var types, so errors show at `weir validate` with
// the rule's name and the line:column in the expression. No I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	errs.AddPrefixed("rule_actions", c.Actions.Validate())
	names := map[string]int{}
	alarmNames := map[string]string{}
	for i := range c.Rules {
		r := &c.Rules[i]
		p := conf.Index("rules", i)
		if alarms.ValidName(r.Name) != nil {
			errs.Addf(conf.JoinPath(p, "name"), "%q: a rule name is 1..128 letters, digits, '_', '-' or '.'", r.Name)
		} else if j, dup := names[r.Name]; dup {
			errs.Addf(conf.JoinPath(p, "name"), "%q is already the name of rules[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
		if r.For < 0 {
			errs.Addf(conf.JoinPath(p, "for"), "must not be negative")
		}
		varsOK := validateVars(&errs, p, r)
		if len(r.Actions) == 0 && len(r.OnClear) == 0 {
			errs.Addf(conf.JoinPath(p, "actions"), "at least one action is required")
		}
		for j := range r.Actions {
			ap := conf.Index(conf.JoinPath(p, "actions"), j)
			validateAction(&errs, ap, r, &r.Actions[j], varsOK, false)
			if a := r.Actions[j].Alarm; a != nil && a.Name != "" {
				if other, dup := alarmNames[a.Name]; dup {
					errs.Addf(conf.JoinPath(ap, "alarm.name"), "alarm %q is already raised by rule %q", a.Name, other)
				}
				alarmNames[a.Name] = r.Name
			}
		}
		for j := range r.OnClear {
			validateAction(&errs, conf.Index(conf.JoinPath(p, "on_clear"), j), r, &r.OnClear[j], varsOK, true)
		}
		if r.When == "" {
			errs.Addf(conf.JoinPath(p, "when"), "is required")
		} else if varsOK {
			if _, err := compileBool(r, "when", r.When); err != nil {
				errs.Add(&conf.FieldError{Path: conf.JoinPath(p, "when"), Err: err})
			}
		}
		if h := r.Hysteresis; h != nil {
			hp := conf.JoinPath(p, "hysteresis")
			switch {
			case h.ClearWhen != "" && h.Deadband != 0:
				errs.Addf(hp, "set clear_when or deadband, not both")
			case h.ClearWhen == "" && h.Deadband == 0:
				errs.Addf(hp, "set clear_when or deadband")
			case h.ClearWhen != "" && varsOK:
				if _, err := compileBool(r, "hysteresis.clear_when", h.ClearWhen); err != nil {
					errs.Add(&conf.FieldError{Path: conf.JoinPath(hp, "clear_when"), Err: err})
				}
			case h.Deadband != 0:
				if h.Deadband < 0 || math.IsInf(h.Deadband, 0) || math.IsNaN(h.Deadband) {
					errs.Addf(conf.JoinPath(hp, "deadband"), "must be a positive number")
				} else if varsOK && r.When != "" {
					if _, err := deadbandClear(r); err != nil {
						errs.Add(&conf.FieldError{Path: conf.JoinPath(hp, "deadband"), Err: err})
					}
				}
			}
		}
	}
	return errs.Err()
}

// validateVars checks vars and var_types; false when expressions cannot be
// compiled against them.
func validateVars(errs *conf.Errors, p string, r *Rule) bool {
	ok := true
	if len(r.Vars) == 0 {
		errs.Addf(conf.JoinPath(p, "vars"), "at least one input is required (a constant never changes)")
		ok = false
	}
	for _, name := range sortedKeys(r.Vars) {
		vp := conf.JoinPath(p, "vars", name)
		if !isIdent(name) {
			errs.Addf(vp, "%q is not a valid name (letters, digits, '_', not starting with a digit)", name)
			ok = false
		}
		if err := model.ValidatePath(r.Vars[name]); err != nil {
			errs.Add(conf.Errorf(vp, "%w", err))
		}
	}
	for _, name := range sortedKeys(r.VarTypes) {
		vp := conf.JoinPath(p, "var_types", name)
		if _, in := r.Vars[name]; !in {
			errs.Addf(vp, "no var %q in vars", name)
		}
		if !oneOf(r.VarTypes[name], types) {
			errs.Addf(vp, "%q is not one of %s", r.VarTypes[name], strings.Join(types, ", "))
			ok = false
		}
	}
	return ok
}

func validateAction(errs *conf.Errors, p string, r *Rule, a *Action, varsOK, onClear bool) {
	n := 0
	for _, set := range []bool{a.Set != nil, a.Alarm != nil, a.Event != nil, a.Write != nil, a.HTTP != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs.Addf(p, "exactly one of set, alarm, event, write, http is required, found %d", n)
		return
	}
	switch {
	case a.Set != nil:
		validatePath(errs, conf.JoinPath(p, "set.path"), a.Set.Path)
		validateValue(errs, conf.JoinPath(p, "set"), "set", r, a.Set.Value, a.Set.Expr, varsOK)
	case a.Write != nil:
		validatePath(errs, conf.JoinPath(p, "write.path"), a.Write.Path)
		validateValue(errs, conf.JoinPath(p, "write"), "write", r, a.Write.Value, a.Write.Expr, varsOK)
	case a.Event != nil:
		validatePath(errs, conf.JoinPath(p, "event.path"), a.Event.Path)
		if _, err := payloadString(a.Event.Payload); err != nil {
			errs.Add(conf.Errorf(conf.JoinPath(p, "event.payload"), "%w", err))
		}
	case a.Alarm != nil:
		if onClear {
			errs.Addf(conf.JoinPath(p, "alarm"), "an alarm clears with its rule; list it under actions only")
		}
		if err := alarms.ValidName(a.Alarm.Name); err != nil {
			errs.Add(conf.Errorf(conf.JoinPath(p, "alarm.name"), "%w", err))
		}
		if a.Alarm.Priority != "" && !oneOf(a.Alarm.Priority, priorities) {
			errs.Addf(conf.JoinPath(p, "alarm.priority"), "%q is not one of %s", a.Alarm.Priority, strings.Join(priorities, ", "))
		}
	case a.HTTP != nil:
		u, err := url.Parse(a.HTTP.URL)
		switch {
		case a.HTTP.URL == "":
			errs.Addf(conf.JoinPath(p, "http.url"), "is required")
		case conf.HTTPSchemes.Check(a.HTTP.URL) != nil:
			errs.Add(&conf.FieldError{Path: conf.JoinPath(p, "http.url"), Err: conf.HTTPSchemes.Check(a.HTTP.URL)})
		case err != nil:
			errs.Addf(conf.JoinPath(p, "http.url"), "is not a URL") // url.Parse would repeat it, credentials and all
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs.Addf(conf.JoinPath(p, "http.url"), "must be an absolute http:// or https:// URL")
		case u.User != nil: // it would be logged with every failed call
			errs.Addf(conf.JoinPath(p, "http.url"), "must not contain credentials; send them in a header")
		}
		if a.HTTP.Method != "" && !oneOf(a.HTTP.Method, methods) {
			errs.Addf(conf.JoinPath(p, "http.method"), "%q is not one of %s", a.HTTP.Method, strings.Join(methods, ", "))
		}
	}
}

func validatePath(errs *conf.Errors, key, path string) {
	if err := model.ValidatePath(path); err != nil {
		errs.Add(conf.Errorf(key, "%w", err))
	}
}

// validateValue checks the value/expr pair of a set or write action; kind
// is "set" or "write".
func validateValue(errs *conf.Errors, p, kind string, r *Rule, value any, exprText string, varsOK bool) {
	switch {
	case value != nil && exprText != "":
		errs.Addf(p, "set value or expr, not both")
	case value == nil && exprText == "":
		errs.Addf(p, "value or expr is required")
	case value != nil:
		if _, err := constValue(value); err != nil {
			errs.Add(conf.Errorf(conf.JoinPath(p, "value"), "%w", err))
		}
	case varsOK:
		if _, err := compileValue(r, kind+".expr", exprText); err != nil {
			errs.Add(&conf.FieldError{Path: conf.JoinPath(p, "expr"), Err: err})
		}
	}
}

// constValue turns a YAML scalar into a Value.
func constValue(v any) (model.Value, error) {
	switch x := v.(type) {
	case bool:
		return model.Bool(x), nil
	case int:
		return model.Int(int64(x)), nil
	case int64:
		return model.Int(x), nil
	case uint64:
		return model.Uint(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return model.Value{}, fmt.Errorf("value must be finite")
		}
		return model.Float(x), nil
	case string:
		return model.String(x), nil
	}
	return model.Value{}, fmt.Errorf("value must be a number, a bool or a string, not %T", v)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
