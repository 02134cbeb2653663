package writegate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

// shareTag is a tag under a 10/min policy open to every API caller, as
// in the demo.
var shareTag = Config{Policies: []Policy{{Match: "acme/plant1/filling/+/filler/speed_setpoint", Allow: true,
	Callers: []string{"api:*"}, Type: "int", Min: fp(60), Max: fp(600), MaxRate: "10/min"}}}

// TestShareDefaultLimitsProtectOperator: with the default write_limits
// (per_caller 30/min, above the tag's 10/min), a foreign caller writing
// as fast as it can gets at most its share, half the tag's budget, and
// the operator's write still passes — at once and after minutes of it.
// Its refusals are audited as one entry and one summary per window.
func TestShareDefaultLimitsProtectOperator(t *testing.T) {
	r := newRig(t, shareTag)
	ctx := context.Background()
	op := func() error {
		q := r.req(speed, model.Int(420), "api:operator")
		q.Role = security.Operator
		_, err := r.gate.Write(ctx, q)
		return err
	}
	mallory := func(n int) (allowed int, last error) {
		for range n {
			q := r.req(speed, model.Int(300), "api:mallory")
			q.Role, q.Remote = security.Operator, "192.0.2.7:4444"
			_, err := r.gate.Write(ctx, q)
			if err == nil {
				allowed++
			} else {
				last = err
			}
		}
		return allowed, last
	}
	if got, last := mallory(100); got != 5 || !strings.Contains(last.Error(), "per-caller") {
		t.Fatalf("foreign burst: %d allowed, last refusal %v; want 5", got, last)
	}
	if err := op(); err != nil {
		t.Fatalf("operator's write after a foreign burst: %v", err)
	}
	// Ten minutes of a foreign caller writing whenever it can.
	total := 0
	for range 600 {
		r.clk.advance(time.Second)
		got, _ := mallory(1)
		total += got
		r.gate.FlushRefusals(false)
	}
	if total > 51 {
		t.Fatalf("foreign caller wrote %d times in 10 minutes, more than its share 5/min", total)
	}
	for i := range 5 { // the other half is the operator's
		if err := op(); err != nil {
			t.Fatalf("operator's write %d after 10 minutes of foreign writes: %v", i, err)
		}
	}
	tail, _ := r.trail.Tail(10000)
	var first, sums int
	for _, e := range tail {
		switch {
		case strings.HasPrefix(e.Reason, "per-caller share 5/min of the tag's max_rate 10/min (write_policies[0]) exceeded"):
			first++
		case strings.Contains(e.Reason, "further attempts refused by the per-caller share 5/min"):
			sums++
			if e.Caller != "api:mallory" || e.Path != speed || e.Remote != "192.0.2.7:4444" || e.Role != "operator" {
				t.Fatalf("summary %+v", e)
			}
		}
	}
	if first < 1 || sums < 1 || len(tail) > 200 {
		t.Fatalf("%d entries: %d audited share refusals, %d summaries", len(tail), first, sums)
	}
}

// TestShareRefundedWhenTagRefuses: an attempt the tag's own bucket
// refuses does not spend the caller's share.
func TestShareRefundedWhenTagRefuses(t *testing.T) {
	cfg := Config{Policies: []Policy{{Match: "#", Allow: true, Callers: []string{"api:*"}, MaxRate: "4/min"}}}
	r := newRig(t, cfg)
	ctx := context.Background()
	for _, c := range []string{"api:a", "api:a", "api:b", "api:b"} {
		if _, err := r.gate.Write(ctx, r.req(speed, model.Int(1), c)); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	for range 5 {
		if _, err := r.gate.Write(ctx, r.req(speed, model.Int(1), "api:c")); err == nil || err.Error() != "rate limit 4/min exceeded" {
			t.Fatalf("api:c on an empty tag: %v", err)
		}
	}
	r.clk.advance(30 * time.Second) // the tag refills 2
	for i := range 2 {
		if _, err := r.gate.Write(ctx, r.req(speed, model.Int(1), "api:c")); err != nil {
			t.Fatalf("api:c write %d: %v", i, err)
		}
	}
}

// TestShareNotApplied: exempt callers (rules) and a policy with one
// literal caller use the whole budget.
func TestShareNotApplied(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		caller string
		want   int
	}{
		{"rule exempt", Policy{Match: "#", Allow: true, Callers: []string{"api:*", "rule:*"}, MaxRate: "10/min"}, "rule:overheat", 10},
		{"single caller", Policy{Match: "#", Allow: true, Callers: []string{"mqtt:mes"}, MaxRate: "10/min"}, "mqtt:mes", 10},
		{"glob", Policy{Match: "#", Allow: true, Callers: []string{"mqtt:*"}, MaxRate: "10/min"}, "mqtt:mes", 5},
		{"roles", Policy{Match: "#", Allow: true, Roles: []security.Role{security.Operator}, MaxRate: "10/min"}, "api:x", 5},
		{"exempt none", Policy{Match: "#", Allow: true, Callers: []string{"rule:*"}, MaxRate: "10/min"}, "rule:x", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Policies: []Policy{tt.policy}}
			if tt.name == "exempt none" {
				cfg.Limits.Exempt = []string{}
			}
			r := newRig(t, cfg)
			got := 0
			for range 20 {
				q := r.req(speed, model.Int(1), tt.caller)
				q.Role = security.Operator
				if _, err := r.gate.Write(context.Background(), q); err == nil {
					got++
				}
			}
			if got != tt.want {
				t.Fatalf("%d writes allowed, want %d", got, tt.want)
			}
		})
	}
}

func TestShareRate(t *testing.T) {
	tests := []struct {
		src   string
		burst float64
		per   time.Duration
		text  string
	}{
		{"10/min", 5, time.Minute, "5/min"},
		{"60/min", 30, time.Minute, "30/min"},
		{"3/min", 2, 80 * time.Second, "1.5/min"},
		{"1/h", 1, 2 * time.Hour, "0.5/h"},
		{"2 / s", 1, time.Second, "1/s"},
	}
	for _, tt := range tests {
		r, err := parseRate(tt.src)
		if err != nil {
			t.Fatal(err)
		}
		if s := shareRate(r); s.n != tt.burst || s.per != tt.per || s.src != tt.text {
			t.Errorf("%s: share %+v, want %g per %s (%s)", tt.src, s, tt.burst, tt.per, tt.text)
		}
	}
}

// TestSharesBounded: pairs beyond the bound share one bucket, summarised
// under one name.
func TestSharesBounded(t *testing.T) {
	r := newRig(t, Config{Policies: []Policy{{Match: "#", Allow: true, Callers: []string{"*"}, MaxRate: "1000/s"}},
		Limits: Limits{PerCaller: "1000/s"}})
	r.gate.shares.max = 3
	for i := range 2000 {
		r.gate.Write(context.Background(), r.req(speed, model.Int(1), fmt.Sprintf("mqtt:c%d", i)))
	}
	if n := len(r.gate.shares.m); n != 4 {
		t.Fatalf("%d share buckets, want 3 and the shared one", n)
	}
	r.clk.advance(SummaryWindow)
	r.gate.FlushRefusals(false)
	tail, _ := r.trail.Tail(10)
	last := tail[len(tail)-1]
	if last.Result != audit.Denied || !strings.Contains(last.Caller, "beyond") || !strings.Contains(last.Reason, "further attempts refused by the per-caller share") {
		t.Fatalf("overflow summary %+v", last)
	}
}
