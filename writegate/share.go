package writegate

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Per-(caller, tag) shares: besides its own bucket (callers.go), every
// caller gets at most a share of each tag's budget — a bucket per caller
// and tag at half the policy's max_rate, with a burst of half the
// policy's (rounded up). It is spent after every other check passed and
// before the tag's bucket, and given back when the tag's bucket then
// refuses. So one caller, however it stays under write_limits.per_caller,
// can spend at most half a tag's budget: with the demo's 10/min, a
// foreign token writes 5 and then 5 a minute, and the operator still has
// the other half. (Several callers acting together can still spend it
// all; per_caller and max_callers bound how many there are.)
//
// Callers write_limits.exempt names (rules by default) have no share:
// like the per-caller limit, they are bounded by max_rate alone. A
// policy that admits exactly one caller (one callers entry without '*')
// has no share either: there is nobody to leave the rest to.
//
// Refusals by a share are audited like those of the per-caller limit:
// the first in a window is an entry, further ones are counted and
// summarised once the window has passed.

// maxShares bounds the share buckets. A bucket exists only for a caller
// and tag that passed every other check; buckets that have refilled are
// dropped when the map is full, and pairs beyond it share one bucket.
const maxShares = 10000

// shareRate is the share of one caller in a tag's budget r: refill r/2,
// burst ceil(n/2). With n ≥ 2 the burst is below the tag's, so one
// caller cannot take a full bucket; with n = 1 it takes the token but
// earns the next only after two periods, leaving every other refill to
// the others.
func shareRate(r rate) rate {
	half := r.n / 2
	burst := math.Ceil(half)
	unit := r.src[strings.IndexByte(r.src, '/')+1:]
	return rate{n: burst, per: time.Duration(float64(r.per) * burst / half),
		src: strconv.FormatFloat(half, 'g', -1, 64) + "/" + strings.TrimSpace(unit)}
}

// singleCaller reports whether the policy admits exactly one caller, so
// a share would only halve its budget.
func singleCaller(p Policy) bool {
	return len(p.Callers) == 1 && !strings.Contains(p.Callers[0], "*")
}

func newShares(l Limits) *limiter {
	ex := l.Exempt
	if ex == nil {
		ex = DefaultExempt
	}
	return &limiter{exempt: ex, max: maxShares, overflowName: "(callers and tags beyond the share buckets' bound)",
		m: map[string]*callerState{}}
}

func shareKey(req *Request) string { return req.Caller + "\x00" + req.Path }

// shareLimit names the share of policy p in refusals and summaries.
func shareLimit(p *policy) string {
	return fmt.Sprintf("per-caller share %s of the tag's max_rate %s (write_policies[%d])", p.share.src, p.rate.src, p.idx)
}

// takeShare spends a token of req's share of p's budget; passed when p
// has no shares or the caller is exempt.
func (g *Gate) takeShare(p *policy, req *Request, now time.Time) verdict {
	if p.share.n == 0 || g.shares.exempted(req.Caller) {
		return passed
	}
	return g.shares.spend(shareKey(req), p.share, shareLimit(p), req, now)
}
