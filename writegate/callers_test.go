package writegate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

// TestPerCallerLimitProtectsOperator: a foreign caller's burst spends its
// own budget, not the tag's, so the operator's command still passes; and
// the flood adds a bounded number of entries to the trail.
func TestPerCallerLimitProtectsOperator(t *testing.T) {
	cfg := Config{Policies: testPolicies.Policies, Limits: Limits{PerCaller: "2/min"}}
	r := newRig(t, cfg)
	ctx := context.Background()
	refused := 0
	for i := range 50 {
		q := r.req(speed, model.Int(300), "api:anonymous")
		q.Remote = "192.0.2.9:40000"
		_, err := r.gate.Write(ctx, q)
		switch {
		case i < 2 && err != nil:
			t.Fatalf("foreign write %d: %v", i, err)
		case i >= 2 && (err == nil || !strings.Contains(err.Error(), "per-caller rate limit 2/min exceeded")):
			t.Fatalf("foreign write %d: %v, want the per-caller refusal", i, err)
		case i >= 2:
			refused++
		}
	}
	// Tag budget 3/min: two spent by the foreign caller, one left.
	q := r.req(speed, model.Int(420), "api:operator")
	q.Role, q.Remote = security.Operator, "10.0.0.5:5555"
	res, err := r.gate.Write(ctx, q)
	if err != nil {
		t.Fatalf("operator's write after a foreign burst: %v", err)
	}
	if res.Role != "operator" || res.Remote != "10.0.0.5:5555" {
		t.Fatalf("role and remote not recorded: %+v", res)
	}
	tail, _ := r.trail.Tail(100)
	// 2 allowed + 1 audited refusal + the operator's write; the other 47
	// refusals are only counted so far.
	if len(tail) != 4 || tail[2].Result != audit.Denied || tail[2].Remote != "192.0.2.9:40000" {
		t.Fatalf("trail after the burst: %d entries %+v", len(tail), tail)
	}
	// Within the window nothing more is written.
	r.gate.FlushRefusals(false)
	if tail, _ = r.trail.Tail(100); len(tail) != 4 {
		t.Fatalf("summary written before the window passed: %+v", tail[len(tail)-1])
	}
	r.clk.advance(SummaryWindow)
	r.gate.FlushRefusals(false)
	tail, _ = r.trail.Tail(100)
	if len(tail) != 5 {
		t.Fatalf("no summary after the window: %d entries", len(tail))
	}
	sum := tail[4]
	if sum.Caller != "api:anonymous" || sum.Result != audit.Denied || sum.Remote != "192.0.2.9:40000" ||
		!strings.HasPrefix(sum.Reason, fmt.Sprintf("%d further attempts refused by the per-caller rate limit 2/min", refused-1)) {
		t.Fatalf("summary %+v", sum)
	}
	r.gate.FlushRefusals(true)
	if tail, _ = r.trail.Tail(100); len(tail) != 5 {
		t.Fatalf("summary written twice: %d entries", len(tail))
	}
}

// TestPerCallerWindows: a flood across several windows adds one audited
// refusal and one summary per window, in time order.
func TestPerCallerWindows(t *testing.T) {
	r := newRig(t, Config{Policies: testPolicies.Policies, Limits: Limits{PerCaller: "1/h"}})
	ctx := context.Background()
	for range 3 { // windows
		for range 100 {
			r.gate.Write(ctx, r.req("acme/plant2/x", model.Int(1), "api:flood"))
		}
		r.clk.advance(SummaryWindow + time.Second)
	}
	tail, _ := r.trail.Tail(100)
	var got []string
	for _, e := range tail {
		got = append(got, e.Reason[:min(len(e.Reason), 30)])
	}
	// 1 policy denial (the one token), then per window: a refusal (after
	// the first window, preceded by the previous window's summary).
	want := []string{"no policy allows writes to acm", "per-caller rate limit 1/h exce", "98 further attempts refused by",
		"per-caller rate limit 1/h exce", "99 further attempts refused by", "per-caller rate limit 1/h exce"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("trail\n%q\nwant\n%q", got, want)
	}
}

func TestPerCallerExemptAndBounded(t *testing.T) {
	ctx := context.Background()
	t.Run("rules exempt by default", func(t *testing.T) {
		r := newRig(t, Config{Policies: []Policy{{Match: "#", Allow: true, Callers: []string{"*"}, MaxRate: "1000/s"}},
			Limits: Limits{PerCaller: "1/h"}})
		for i := range 20 {
			if _, err := r.gate.Write(ctx, r.req(speed, model.Int(1), "rule:overheat")); err != nil {
				t.Fatalf("rule write %d: %v", i, err)
			}
		}
		if _, err := r.gate.Write(ctx, r.req(speed, model.Int(1), "api:x")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.gate.Write(ctx, r.req(speed, model.Int(1), "api:x")); err == nil {
			t.Fatal("second api write within 1/h passed")
		}
	})
	t.Run("max_callers share one bucket", func(t *testing.T) {
		r := newRig(t, Config{Policies: []Policy{{Match: "#", Allow: true, Callers: []string{"*"}, MaxRate: "1000/s"}},
			Limits: Limits{PerCaller: "1/h", MaxCallers: 3}})
		allowed := 0
		for i := range 1000 {
			if _, err := r.gate.Write(ctx, r.req(speed, model.Int(1), fmt.Sprintf("mqtt:forged%d", i))); err == nil {
				allowed++
			}
		}
		// 3 callers with their own bucket, plus the one shared bucket.
		if allowed != 4 || len(r.gate.callers.m) != 4 {
			t.Fatalf("allowed %d, %d buckets; want 4 and 4", allowed, len(r.gate.callers.m))
		}
		r.clk.advance(SummaryWindow)
		r.gate.FlushRefusals(false)
		tail, _ := r.trail.Tail(100)
		last := tail[len(tail)-1]
		if !strings.HasPrefix(last.Reason, "995 further attempts") || !strings.Contains(last.Caller, "max_callers") {
			t.Fatalf("overflow summary %+v", last)
		}
	})
}

func TestRolesInPolicies(t *testing.T) {
	cfg := Config{Policies: []Policy{
		{Match: "a/roles_only", Allow: true, Roles: []security.Role{security.Operator}},
		{Match: "a/both", Allow: true, Callers: []string{"api:alice"}, Roles: []security.Role{security.Engineer}},
		{Match: "a/callers_only", Allow: true, Callers: []string{"api:*"}},
	}}
	tests := []struct {
		path   string
		caller string
		role   security.Role
		reason string // "" allowed
	}{
		{"a/roles_only", "api:bob", security.Operator, ""},
		{"a/roles_only", "api:bob", security.Admin, ""},
		{"a/roles_only", "mqtt:bob", security.Viewer, "role viewer of caller mqtt:bob not allowed (policy write_policies[0] needs operator)"},
		{"a/roles_only", "rule:x", "", "role (none) of caller rule:x not allowed"},
		{"a/roles_only", "api:bob", "superuser", "role superuser of caller api:bob not allowed"},
		{"a/both", "api:alice", security.Engineer, ""},
		{"a/both", "api:alice", security.Operator, "role operator of caller api:alice not allowed"},
		{"a/both", "api:bob", security.Admin, "caller api:bob not allowed"},
		{"a/callers_only", "api:bob", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path+"/"+tt.caller+"/"+string(tt.role), func(t *testing.T) {
			r := newRig(t, cfg)
			if err := r.gate.Register("a", r.w); err != nil {
				t.Fatal(err)
			}
			q := r.req(tt.path, model.Int(1), tt.caller)
			q.Role = tt.role
			res, err := r.gate.Write(context.Background(), q)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrDenied) || !strings.HasPrefix(err.Error(), tt.reason) || res.Seq == 0 {
				t.Fatalf("err = %v, want %q (audited)", err, tt.reason)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		l    Limits
		want string
	}{
		{Limits{}, ""},
		{Limits{PerCaller: "5/s", MaxCallers: 10, Exempt: []string{}}, ""},
		{Limits{PerCaller: "lots"}, "write_limits.per_caller: \"lots\" is not N/unit"},
		{Limits{MaxCallers: -1}, "write_limits.max_callers: -1 is out of range"},
		{Limits{Exempt: []string{""}}, "write_limits.exempt[0]: must not be empty"},
	}
	for _, tt := range tests {
		err := (&Config{Limits: tt.l}).Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: err = %v, want %q", tt.l, err, tt.want)
		}
	}
	p := Config{Policies: []Policy{{Match: "a", Allow: true, Roles: []security.Role{"root"}}}}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), `write_policies[0].roles[0]: unknown role "root"`) {
		t.Errorf("unknown role: %v", err)
	}
	deny := Config{Policies: []Policy{{Match: "a", Roles: []security.Role{"operator"}}}}
	if err := deny.Validate(); err == nil || !strings.Contains(err.Error(), "takes only match") {
		t.Errorf("deny with roles: %v", err)
	}
}

// TestGateSecurityEvents: every recorded attempt is also a WriteAllowed
// or WriteDenied event for the SOC; refusals only counted are not, their
// summary is.
func TestGateSecurityEvents(t *testing.T) {
	r := newRig(t, Config{Policies: testPolicies.Policies, Limits: Limits{PerCaller: "2/min"}})
	var evs []security.Event
	r.gate.SetEvents(security.RecorderFunc(func(_ context.Context, ev security.Event) { evs = append(evs, ev) }))
	ctx := context.Background()
	q := r.req(speed, model.Int(300), "api:alice")
	q.Remote = "10.1.1.1:999"
	r.gate.Write(ctx, q)                                          // allowed
	r.gate.Write(ctx, r.req(speed, model.Int(9000), "api:alice")) // denied: range
	for range 10 {
		r.gate.Write(ctx, r.req(speed, model.Int(300), "api:alice")) // 1 refused, 9 counted
	}
	r.clk.advance(SummaryWindow)
	r.gate.FlushRefusals(false)
	var got []string
	for _, ev := range evs {
		got = append(got, string(ev.Kind)+"/"+ev.Outcome)
	}
	want := "write.allowed/ok,write.denied/denied,write.denied/denied,write.denied/denied"
	if strings.Join(got, ",") != want {
		t.Fatalf("events %v, want %s", got, want)
	}
	if evs[0].Remote != "10.1.1.1:999" || evs[0].Actor != "api:alice" || evs[0].Object != speed || evs[0].Component != "writegate" {
		t.Fatalf("event %+v", evs[0])
	}
	if !strings.HasPrefix(evs[3].Detail, "9 further attempts refused") {
		t.Fatalf("summary event %+v", evs[3])
	}
}

// SetLimits changes the per-caller limit of a running gate: a caller's
// spent budget is kept (capped to the new burst), the new rate and
// exemptions apply at the next attempt; an invalid block is refused.
func TestSetLimitsLive(t *testing.T) {
	const tag = "acme/plant1/filling/line1/filler/mode" // no max_rate
	r := newRig(t, Config{Policies: testPolicies.Policies, Limits: Limits{PerCaller: "2/h"}})
	ctx := context.Background()
	write := func(caller string) error {
		_, err := r.gate.Write(ctx, r.req(tag, model.Int(1), caller))
		return err
	}
	for i := range 2 {
		if err := write("api:eve"); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := write("api:eve"); err == nil {
		t.Fatal("third write within 2/h passed")
	}
	if err := r.gate.SetLimits(Limits{PerCaller: "5/h"}); err != nil {
		t.Fatal(err)
	}
	if err := write("api:eve"); err == nil || !strings.Contains(err.Error(), "per-caller rate limit 5/h exceeded") {
		t.Fatalf("after raising the limit, a spent budget: %v, want refused by 5/h", err)
	}
	for i := range 5 { // a new caller gets the new burst
		if err := write("api:bob"); err != nil {
			t.Fatalf("bob's write %d: %v", i, err)
		}
	}
	if err := r.gate.SetLimits(Limits{Exempt: []string{"api:eve"}}); err != nil {
		t.Fatal(err)
	}
	if err := write("api:eve"); err != nil {
		t.Fatalf("an exempted caller: %v", err)
	}
	if err := r.gate.SetLimits(Limits{PerCaller: "fast"}); err == nil {
		t.Fatal("an invalid per_caller accepted")
	}
}
