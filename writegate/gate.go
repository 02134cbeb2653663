package writegate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

// Writer writes one tag of a device. Sources that can write implement it
// (sources/modbus, sources/opcua); only the Gate calls it.
//
// WriteTag encodes v with the tag's configured type, writes it, reads it
// back and returns an error when the device holds anything else. old is
// the value read before the write (invalid when it could not be read). An
// unknown path or a read-only tag is an error before anything is sent.
// WriteTag may be called from many goroutines; the implementation
// serialises with its own polling. It must not retry a write on its own:
// a command that did not go through is reported, never replayed.
type Writer interface {
	WriteTag(ctx context.Context, path string, v model.Value) (old model.Value, err error)
}

// Trail is where the Gate records every attempt; *audit.Log implements it.
type Trail interface {
	// Append records e, durably, before returning.
	Append(e audit.Entry) (audit.Entry, error)
	// Err reports why the trail cannot record (nil when it can).
	Err() error
}

var _ Trail = (*audit.Log)(nil)

// ErrDenied is matched (errors.Is) by every refusal of a policy check.
var ErrDenied = errors.New("write denied")

// DeniedError is a refusal; Reason says which check refused and why.
type DeniedError struct{ Reason string }

func (e *DeniedError) Error() string        { return e.Reason }
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// ErrAudit is matched when the trail could not record an attempt. A write
// is never started while the trail is broken; when recording fails after
// the device write, the error says that the value was written.
var ErrAudit = errors.New("audit trail unavailable")

// Request is one command to write a tag.
type Request struct {
	Path  string
	Value model.Value
	// Caller says who asks, as "<channel>:<identity>": "api:alice",
	// "rule:overheat", "mqtt:cmd", "sparkplug:DCMD". Policies match it.
	Caller string
	// Role is the highest role the caller's authentication gave it
	// (security.Role); empty for callers without one (rules). A policy
	// that names roles allows only callers whose role includes one.
	Role security.Role
	// Remote is the network address the command came from, when there is
	// one, recorded in the trail.
	Remote string
	// IssuedAt is when the command was issued (the message's timestamp for
	// MQTT and Sparkplug commands, the request time for the API). Required:
	// a command without one could be arbitrarily stale.
	IssuedAt time.Time
	// Reason is the caller's own explanation, recorded in the trail.
	Reason string
}

// Result is the outcome of a Write, as recorded in the trail.
type Result = audit.Entry

// Gate is the only way to write to OT: every write passes its policy
// checks and is recorded in the audit trail, allowed or not.
type Gate struct {
	policies atomic.Pointer[[]policy] // swapped whole by SetPolicies
	trail    Trail
	log      *slog.Logger
	now      func() time.Time

	mu      sync.RWMutex
	writers map[string]Writer // by path prefix

	rates   buckets
	callers *limiter
	shares  *limiter // per (caller, tag): share.go
	events  security.Recorder
}

// policy is a compiled Policy.
type policy struct {
	Policy
	idx    int
	rate   rate
	share  rate // one caller's share of rate; zero: none (share.go)
	maxAge time.Duration
}

// New checks cfg and builds the gate; trail is required (no audit, no
// writes). Register writers before the first Write.
func New(cfg Config, trail Trail, log *slog.Logger) (*Gate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("writegate: %w", err)
	}
	if trail == nil {
		return nil, errors.New("writegate: an audit trail is required")
	}
	g := &Gate{trail: trail, log: log, now: time.Now, writers: map[string]Writer{}, rates: buckets{m: map[string]*bucket{}},
		callers: newLimiter(cfg.Limits), shares: newShares(cfg.Limits), events: security.Discard}
	g.policies.Store(compile(cfg.Policies))
	return g, nil
}

// compile turns validated policies into the form check reads.
func compile(ps []Policy) *[]policy {
	out := make([]policy, 0, len(ps))
	for i, p := range ps {
		cp := policy{Policy: p, idx: i, maxAge: p.MaxAge}
		if p.Allow {
			if p.MaxRate == "" {
				cp.MaxRate = DefaultMaxRate
			}
			cp.rate, _ = parseRate(cp.MaxRate) // validated
			if !singleCaller(p) {
				cp.share = shareRate(cp.rate)
			}
			if cp.maxAge == 0 {
				cp.maxAge = DefaultMaxAge
			}
		}
		out = append(out, cp)
	}
	return &out
}

// SetPolicies replaces the write policies of a running gate (hot reload):
// every attempt that starts after it is judged by ps. The per-caller
// limits (write_limits) and the rate buckets carry over; a bucket takes
// its tag's new max_rate at its next refill. Invalid policies are refused
// and the running ones stay.
func (g *Gate) SetPolicies(ps []Policy) error {
	c := Config{Policies: ps}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("writegate: %w", err)
	}
	g.policies.Store(compile(ps))
	return nil
}

// SetLimits replaces the write_limits of a running gate (a reload): the
// per-caller rate, the exempt callers and max_callers. A caller keeps
// the tokens it has (capped to the new burst): a reload neither refills
// a budget nor empties one.
func (g *Gate) SetLimits(l Limits) error {
	if err := l.validate(); err != nil {
		return fmt.Errorf("writegate: write_limits: %w", err)
	}
	fresh, shares := newLimiter(l), newShares(l)
	g.callers.set(fresh.rate, fresh.exempt, fresh.max, true)
	g.shares.set(rate{}, shares.exempt, shares.max, false)
	return nil
}

// SetEvents sends a security.WriteAllowed or WriteDenied event for every
// attempt the trail records (the SOC stream; refusals the per-caller
// limit only counts go as their summary). Call it before the first Write.
func (g *Gate) SetEvents(r security.Recorder) { g.events = r }

// event reports a recorded attempt to the SOC stream.
func (g *Gate) event(ctx context.Context, e Result) {
	ev := security.Event{Time: e.Time, Kind: security.WriteAllowed, Severity: security.SeverityNotice, Actor: e.Caller,
		Remote: e.Remote, Component: "writegate", Object: e.Path, Outcome: "ok", Detail: e.Reason}
	switch e.Result {
	case audit.Denied:
		ev.Kind, ev.Severity, ev.Outcome = security.WriteDenied, security.SeverityWarning, "denied"
	case audit.Failed:
		ev.Outcome, ev.Severity = "failed", security.SeverityWarning
	}
	g.events.Record(ctx, ev)
}

// SetClock replaces the clock that judges command age and refills rate
// buckets (tests). Call it before the first Write.
func (g *Gate) SetClock(now func() time.Time) { g.now = now }

// Register routes writes to paths under prefix (the path itself or below
// it, at a level boundary) to w; the longest registered prefix wins. An
// empty prefix catches every path.
func (g *Gate) Register(prefix string, w Writer) error {
	if prefix != "" {
		if err := model.ValidatePath(prefix); err != nil {
			return fmt.Errorf("writegate: register: %w", err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, dup := g.writers[prefix]; dup {
		return fmt.Errorf("writegate: register: prefix %q already has a writer", prefix)
	}
	g.writers[prefix] = w
	return nil
}

// Unregister removes the writer of prefix (a source being replaced).
func (g *Gate) Unregister(prefix string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.writers, prefix)
}

// writer finds the writer with the longest prefix covering path.
func (g *Gate) writer(path string) Writer {
	g.mu.RLock()
	defer g.mu.RUnlock()
	for p := path; ; {
		if w, ok := g.writers[p]; ok {
			return w
		}
		if p == "" {
			return nil
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			p = ""
		} else {
			p = p[:i]
		}
	}
}

// Write checks req against the policies and, when every check passes,
// writes the tag through its source with read-back. The checks, in order:
// the caller's own bucket has a token (write_limits, spent by every
// attempt; see callers.go) → a policy allows the path → the caller and
// its role are allowed → the command is not older than max_age → the
// value fits the type and range → the caller's share of the tag's budget
// has a token (share.go) → the tag's rate bucket has a token. A refusal
// returns a *DeniedError (errors.Is
// ErrDenied) and nothing is sent to the device. Every attempt is appended
// to the audit trail before Write returns; the Result is that entry.
func (g *Gate) Write(ctx context.Context, req Request) (Result, error) {
	now := g.now()
	res := Result{Time: now, Caller: req.Caller, Path: req.Path, New: req.Value, Note: req.Reason,
		Role: string(req.Role), Remote: req.Remote}
	switch g.callers.take(&req, now) {
	case suppressed:
		// Counted, and audited later as one summarising entry.
		res.Result, res.Reason = audit.Denied, g.callers.reason()
		return res, &DeniedError{Reason: res.Reason}
	case refused:
		g.flushRefusals(now, false) // an older window's summary comes first
		rec, err := g.deny(ctx, req, res, g.callers.reason())
		g.callers.reopen(req.Caller, now)
		return rec, err
	}
	reason, share, w := g.check(req, now)
	switch {
	case share == suppressed:
		res.Result, res.Reason = audit.Denied, reason
		return res, &DeniedError{Reason: res.Reason}
	case share == refused:
		g.flushRefusals(now, false)
		rec, err := g.deny(ctx, req, res, reason)
		g.shares.reopen(shareKey(&req), now)
		return rec, err
	case reason != "":
		return g.deny(ctx, req, res, reason)
	}
	// Nothing reaches the device unless the attempt can be recorded.
	if err := g.trail.Err(); err != nil {
		g.log.Error("write refused: audit trail unavailable", "caller", req.Caller, "path", req.Path, "err", err)
		return res, fmt.Errorf("writegate: %s: write refused: %w: %w", req.Path, ErrAudit, err)
	}
	old, werr := w.WriteTag(ctx, req.Path, req.Value)
	res.Old = old
	res.Result = audit.Allowed
	if werr != nil {
		res.Result, res.Reason = audit.Failed, werr.Error()
		g.log.Warn("write failed", "caller", req.Caller, "path", req.Path, "value", req.Value.String(), "err", werr)
	} else {
		g.log.Info("write done", "caller", req.Caller, "path", req.Path, "old", old.String(), "value", req.Value.String())
	}
	rec, err := g.trail.Append(res)
	g.event(ctx, res)
	if err != nil {
		g.log.Error("write not recorded in the audit trail", "caller", req.Caller, "path", req.Path, "result", res.Result, "err", err)
		return res, fmt.Errorf("writegate: %s: %s but not recorded: %w: %w", req.Path, res.Result, ErrAudit, errors.Join(werr, err))
	}
	if werr != nil {
		return rec, fmt.Errorf("writegate: %s: %w", req.Path, werr)
	}
	return rec, nil
}

// deny records a refusal and returns it.
func (g *Gate) deny(ctx context.Context, req Request, res Result, reason string) (Result, error) {
	res.Result, res.Reason = audit.Denied, reason
	g.log.Warn("write denied", "caller", req.Caller, "path", req.Path, "value", req.Value.String(), "reason", reason)
	rec, err := g.trail.Append(res)
	g.event(ctx, res)
	if err != nil {
		return res, fmt.Errorf("writegate: %s: %w: %w", req.Path, ErrAudit, errors.Join(&DeniedError{Reason: reason}, err))
	}
	return rec, &DeniedError{Reason: reason}
}

// FlushRefusals audits the refusals the per-caller limit only counted,
// one entry per caller: those of windows that have passed, or of every
// window when all is set (at shutdown). Run calls it; tests may too.
func (g *Gate) FlushRefusals(all bool) { g.flushRefusals(g.now(), all) }

func (g *Gate) flushRefusals(now time.Time, all bool) {
	for _, s := range append(g.callers.due(now, all), g.shares.due(now, all)...) {
		e := Result{Time: now, Caller: s.caller, Path: s.path, Result: audit.Denied, Reason: s.reason(),
			Role: s.role, Remote: s.remote}
		g.log.Warn("writes refused by a per-caller limit", "caller", s.caller, "limit", s.limit, "count", s.n, "since", s.start)
		if _, err := g.trail.Append(e); err != nil {
			g.log.Error("summary of refused writes not recorded in the audit trail", "caller", s.caller, "count", s.n, "err", err)
		}
		g.event(context.Background(), e)
	}
}

// Run writes the per-caller refusal summaries as their windows pass, and
// the open ones when ctx ends; it returns nil then.
func (g *Gate) Run(ctx context.Context) error {
	t := time.NewTicker(SummaryWindow / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			g.FlushRefusals(true)
			return nil
		case <-t.C:
			g.FlushRefusals(false)
		}
	}
}

// check runs the policy checks and finds the writer; it returns the
// refusal reason, or "" and the writer; share is the verdict of the
// caller's share of the tag's budget (refused or suppressed: the reason
// is the share's). Share and rate tokens are taken only when everything
// before them passed.
func (g *Gate) check(req Request, now time.Time) (reason string, share verdict, w Writer) {
	if err := model.ValidatePath(req.Path); err != nil {
		return "invalid path: " + err.Error(), passed, nil
	}
	if req.Caller == "" {
		return "caller is required", passed, nil
	}
	var p *policy
	policies := *g.policies.Load()
	for i := range policies {
		if matchPath(policies[i].Match, req.Path) {
			p = &policies[i]
			break
		}
	}
	switch {
	case p == nil:
		return "no policy allows writes to " + req.Path, passed, nil
	case !p.Allow:
		return fmt.Sprintf("policy write_policies[%d] (%s) denies writes to %s", p.idx, p.Match, req.Path), passed, nil
	}
	if len(p.Callers) > 0 && !callerAllowed(p.Callers, req.Caller) {
		return "caller " + req.Caller + " not allowed", passed, nil
	}
	if len(p.Roles) > 0 && !roleAllowed(p.Roles, req.Role) {
		role := string(req.Role)
		if role == "" {
			role = "(none)"
		}
		return fmt.Sprintf("role %s of caller %s not allowed (policy write_policies[%d] needs %s)", role, req.Caller, p.idx, rolesText(p.Roles)), passed, nil
	}
	if req.IssuedAt.IsZero() {
		return "command has no issue time", passed, nil
	}
	switch age := now.Sub(req.IssuedAt); {
	case age > p.maxAge:
		return fmt.Sprintf("command issued %s ago, older than max_age %s", age.Round(time.Millisecond), p.maxAge), passed, nil
	case -age > p.maxAge:
		return fmt.Sprintf("command issued %s in the future, more than max_age %s (clock skew?)", (-age).Round(time.Millisecond), p.maxAge), passed, nil
	}
	if reason := checkValue(&p.Policy, req.Value); reason != "" {
		return reason, passed, nil
	}
	w = g.writer(req.Path)
	if w == nil {
		return "no source serves " + req.Path, passed, nil
	}
	if v := g.takeShare(p, &req, now); v != passed {
		return shareLimit(p) + " exceeded", v, nil
	}
	if !g.rates.take(req.Path, p.rate, now) {
		if p.share.n > 0 {
			g.shares.refund(shareKey(&req)) // nothing written on it
		}
		return "rate limit " + p.rate.src + " exceeded", passed, nil
	}
	return "", passed, w
}

func callerAllowed(patterns []string, caller string) bool {
	for _, p := range patterns {
		if matchGlob(p, caller) {
			return true
		}
	}
	return false
}

// roleAllowed reports whether have includes one of the roles need.
func roleAllowed(need []security.Role, have security.Role) bool {
	for _, r := range need {
		if have.Includes(r) {
			return true
		}
	}
	return false
}

func rolesText(rs []security.Role) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return strings.Join(parts, " or ")
}

// checkValue applies the policy's type and range to v.
func checkValue(p *Policy, v model.Value) string {
	k := v.Kind()
	switch k {
	case model.KindInvalid:
		return "value is missing"
	case model.KindArray:
		return "array values cannot be written"
	}
	f, numeric := v.Float64()
	numeric = numeric && k != model.KindBool
	switch p.Type {
	case "bool":
		if k != model.KindBool {
			return fmt.Sprintf("value %s is not a bool", v)
		}
	case "string":
		if k != model.KindString {
			return fmt.Sprintf("value %s is not a string", v)
		}
	case "float":
		if !numeric {
			return fmt.Sprintf("value %s is not a number", v)
		}
	case "int":
		if !numeric || (k == model.KindFloat && (f != math.Trunc(f) || math.Abs(f) > 1<<63)) {
			return fmt.Sprintf("value %s is not an integer", v)
		}
	}
	if numeric && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return fmt.Sprintf("value %s is not a finite number", v)
	}
	if p.Min == nil && p.Max == nil {
		return ""
	}
	if !numeric {
		return fmt.Sprintf("value %s is not a number (the policy has limits)", v)
	}
	switch {
	case p.Min != nil && p.Max != nil && (f < *p.Min || f > *p.Max):
		return fmt.Sprintf("value %s outside %s..%s", v, num(*p.Min), num(*p.Max))
	case p.Min != nil && f < *p.Min:
		return fmt.Sprintf("value %s below min %s", v, num(*p.Min))
	case p.Max != nil && f > *p.Max:
		return fmt.Sprintf("value %s above max %s", v, num(*p.Max))
	}
	return ""
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
