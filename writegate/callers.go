package writegate

import (
	"fmt"
	"sync"
	"time"

	"github.com/weir-edge/weir/internal/conf"
)

// Per-caller limits: every attempt, allowed or not, first spends a token
// of its caller's own bucket, before any policy or the tag's budget is
// looked at. So a caller that floods (three anonymous writes, a script
// gone wrong, a stolen token) runs out of its own budget, is refused
// without touching the tag's, and the operator's command still passes.
//
// Refusals by this limit are audited sparingly: the first one in a
// window is an entry like any denial, the further ones are only counted,
// and one summarising entry ("N further attempts refused…") follows when
// the window has passed. A flood therefore adds a bounded number of
// entries per caller and window, and cannot rotate history away.

// Defaults of the write_limits block.
const (
	// DefaultPerCaller bounds one caller's attempts across all tags. It
	// need not be below the policies' max_rate: one caller's part of a
	// tag's budget is bounded by its share (share.go).
	DefaultPerCaller = "30/min"
	// DefaultMaxCallers bounds the per-caller state; callers beyond it
	// share one bucket (see limiter.take).
	DefaultMaxCallers = 1000
	// SummaryWindow is how long further refusals of one caller are
	// counted before they are audited as one entry.
	SummaryWindow = time.Minute
)

// DefaultExempt: rules are written by the engineer, bounded by the tags'
// max_rate, and may need to act faster than a person.
var DefaultExempt = []string{"rule:*"}

// Limits is the top-level `write_limits:` block.
type Limits struct {
	// PerCaller is a token bucket per caller ("N/unit", bursts of N),
	// spent by every attempt. Default 30/min. Within it, a caller gets at
	// most half of each tag's max_rate (share.go), whatever PerCaller is.
	PerCaller string `yaml:"per_caller"`
	// Exempt are caller globs the per-caller limit and the per-tag
	// shares do not apply to. Default ["rule:*"]; [] exempts nobody.
	Exempt []string `yaml:"exempt"`
	// MaxCallers bounds how many callers have their own bucket; new
	// callers beyond it share one. Default 1000.
	MaxCallers int `yaml:"max_callers"`
}

func (l *Limits) validate() error {
	var errs conf.Errors
	if l.PerCaller != "" {
		if _, err := parseRate(l.PerCaller); err != nil {
			errs.Addf("per_caller", "%w", err)
		}
	}
	if l.MaxCallers < 0 || l.MaxCallers > 1_000_000 {
		errs.Addf("max_callers", "%d is out of range 0..1000000 (0: default %d)", l.MaxCallers, DefaultMaxCallers)
	}
	for i, e := range l.Exempt {
		if e == "" {
			errs.Addf(conf.Index("exempt", i), "must not be empty")
		}
	}
	return errs.Err()
}

// overflowCaller keys the bucket that callers beyond max_callers share.
const overflowCaller = "\x00overflow"

// callerState is one caller's bucket and its refusals being counted.
type callerState struct {
	bucket
	r      rate   // refill rate and burst of this bucket
	caller string // Request.Caller, or the overflow's name
	limit  string // the limit, as summaries name it
	// windowStart is when the audited refusal that opened the current
	// window happened; zero when no window is open.
	windowStart time.Time
	suppressed  int    // refusals since windowStart not audited one by one
	lastPath    string // of the newest suppressed refusal
	remote      string
	role        string
}

// limiter holds the per-caller buckets. Its windows (take, due, reopen,
// prune) also serve the per-(caller, tag) shares (share.go), whose keys
// are caller and path and whose rate comes from the tag's policy.
type limiter struct {
	rate   rate
	exempt []string
	max    int
	// overflowName names the shared bucket in summaries.
	overflowName string

	mu sync.Mutex
	m  map[string]*callerState
}

func newLimiter(l Limits) *limiter {
	src := l.PerCaller
	if src == "" {
		src = DefaultPerCaller
	}
	r, _ := parseRate(src) // validated
	ex := l.Exempt
	if ex == nil {
		ex = DefaultExempt
	}
	mx := l.MaxCallers
	if mx == 0 {
		mx = DefaultMaxCallers
	}
	return &limiter{rate: r, exempt: ex, max: mx, overflowName: "(callers beyond write_limits.max_callers)",
		m: map[string]*callerState{}}
}

// verdict of limiter.take.
type verdict int

const (
	passed     verdict = iota
	refused            // over the limit: audit this refusal, a window opens
	suppressed         // over the limit within an open window: count only
)

// take spends one of caller's tokens at now. A refusal inside an open
// window is only counted; the first refusal after a window opens one.
func (lm *limiter) take(req *Request, now time.Time) verdict {
	lm.mu.Lock()
	r, exempt := lm.rate, callerAllowed(lm.exempt, req.Caller)
	lm.mu.Unlock()
	if exempt {
		return passed
	}
	return lm.spend(req.Caller, r, "per-caller rate limit "+r.src, req, now)
}

// exempted reports whether caller is exempt from this limiter.
func (lm *limiter) exempted(caller string) bool {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return callerAllowed(lm.exempt, caller)
}

// set changes the limits of a running limiter (a reload): the rate, the
// exempt callers and the bound. Buckets that exist keep what they spent —
// a reload does not hand anyone a fresh budget — capped to the new
// burst, and refill at the new rate (perCaller: only the per-caller
// limiter's buckets take r; shares keep their tag's rate).
func (lm *limiter) set(r rate, exempt []string, max int, perCaller bool) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	lm.exempt, lm.max = exempt, max
	if !perCaller {
		return
	}
	lm.rate = r
	for _, st := range lm.m {
		st.r, st.limit = r, "per-caller rate limit "+r.src
		st.tokens = min(st.tokens, r.n)
	}
}

// spend takes one token of key's bucket (rate r, created full) at now;
// limit names the limit in summaries. Keys beyond max share one bucket.
func (lm *limiter) spend(key string, r rate, limit string, req *Request, now time.Time) verdict {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	st, ok := lm.m[key]
	if !ok {
		if len(lm.m) >= lm.max {
			lm.prune(now)
		}
		caller := req.Caller
		if len(lm.m) >= lm.max {
			key, caller = overflowCaller, lm.overflowName
			st = lm.m[key]
		}
		if st == nil {
			st = &callerState{bucket: bucket{tokens: r.n, last: now}, r: r, caller: caller, limit: limit}
			lm.m[key] = st
		}
	}
	if el := now.Sub(st.last); el > 0 {
		st.tokens = min(st.r.n, st.tokens+st.r.n*float64(el)/float64(st.r.per))
		st.last = now
	}
	if st.tokens >= 1 {
		st.tokens--
		return passed
	}
	if !st.windowStart.IsZero() && now.Sub(st.windowStart) < SummaryWindow {
		st.suppressed++
		st.lastPath, st.remote, st.role = req.Path, req.Remote, string(req.Role)
		return suppressed
	}
	// The window has passed (its summary is written by due) or none is
	// open: this refusal is audited and opens the next (reopen).
	return refused
}

// refund gives back the token spend took for key (a later check refused
// the write, so nothing was written on it).
func (lm *limiter) refund(key string) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	st, ok := lm.m[key]
	if !ok {
		st = lm.m[overflowCaller]
	}
	if st != nil {
		st.tokens = min(st.r.n, st.tokens+1)
	}
}

// summary is the pending count of one caller's suppressed refusals.
type summary struct {
	caller, path, remote, role string
	limit                      string
	start                      time.Time
	n                          int
}

// due closes the windows that have passed by now (every window when all
// is set) and returns the summaries of those with suppressed refusals.
func (lm *limiter) due(now time.Time, all bool) []summary {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	var out []summary
	for _, st := range lm.m {
		if st.windowStart.IsZero() {
			continue
		}
		if !all && now.Sub(st.windowStart) < SummaryWindow {
			continue
		}
		if st.suppressed > 0 {
			out = append(out, summary{caller: st.caller, path: st.lastPath, remote: st.remote, role: st.role,
				limit: st.limit, start: st.windowStart, n: st.suppressed})
		}
		st.suppressed, st.windowStart = 0, time.Time{}
	}
	return out
}

// reopen starts a fresh window for key (a caller, or a share's key) at
// now, after its refusal was audited.
func (lm *limiter) reopen(key string, now time.Time) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	st, ok := lm.m[key]
	if !ok {
		st = lm.m[overflowCaller]
	}
	if st != nil {
		st.windowStart = now
	}
}

// prune drops callers whose bucket is full again and who have nothing
// to summarise: a fresh bucket would be identical.
func (lm *limiter) prune(now time.Time) {
	for c, st := range lm.m {
		if st.suppressed == 0 && c != overflowCaller &&
			min(st.r.n, st.tokens+st.r.n*float64(now.Sub(st.last))/float64(st.r.per)) >= st.r.n {
			delete(lm.m, c)
		}
	}
}

// reason is the text of a refusal by the per-caller limit.
func (lm *limiter) reason() string {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return "per-caller rate limit " + lm.rate.src + " exceeded (write_limits.per_caller)"
}

func (s summary) reason() string {
	return fmt.Sprintf("%d further attempts refused by the %s since %s (summarised)",
		s.n, s.limit, s.start.UTC().Format(time.RFC3339))
}
