package writegate

import (
	"strings"
	"testing"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

func TestPolicyLookup(t *testing.T) {
	cfg := Config{Policies: append([]Policy{
		{Match: "acme/plant1/filling/line1/filler/mode", Allow: true, Roles: []security.Role{security.Engineer}},
		{Match: "acme/plant2/#", Allow: true, Callers: []string{"api:*"}},
	}, testPolicies.Policies...)}
	tests := []struct {
		name     string
		path     string
		writable bool
		index    int // -1: no policy
		reason   string
		caller   string
		role     security.Role
		allowed  bool
		why      string
	}{
		{"allowed", "acme/plant1/filling/line2/filler/speed_setpoint", true, 3, "", "api:alice", security.Operator, true, ""},
		{"caller refused", "acme/plant1/filling/line2/filler/speed_setpoint", true, 3, "", "mqtt:cmd", security.Operator, false, "caller mqtt:cmd not allowed"},
		{"explicit deny", "acme/plant1/filling/line1/filler/run_cmd", false, 2, "policy write_policies[2] (acme/plant1/filling/line1/filler/run_cmd) denies", "api:alice", security.Admin, false, "denies"},
		{"no policy", "acme/plant1/packing/x", false, -1, "no policy allows writes to acme/plant1/packing/x", "api:alice", security.Admin, false, "no policy"},
		{"not served", "acme/plant2/a", false, 1, "no source serves acme/plant2/a", "api:alice", security.Admin, false, "no source"},
		{"role too low", "acme/plant1/filling/line1/filler/mode", true, 0, "", "api:bob", security.Operator, false, "role operator not allowed (policy write_policies[0] needs engineer)"},
		{"role includes", "acme/plant1/filling/line1/filler/mode", true, 0, "", "api:bob", security.Admin, true, ""},
		{"bad path", "a//b", false, -1, "invalid path", "api:alice", security.Admin, false, "invalid path"},
	}
	r := newRig(t, cfg)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := r.gate.Policy(tc.path)
			if v.Writable != tc.writable || !strings.Contains(v.Reason, tc.reason) || (tc.reason == "" && v.Reason != "") {
				t.Fatalf("Policy(%q) = writable %v reason %q; want %v %q", tc.path, v.Writable, v.Reason, tc.writable, tc.reason)
			}
			switch {
			case tc.index < 0 && v.Policy != nil:
				t.Fatalf("policy %+v, want none", v.Policy)
			case tc.index >= 0 && (v.Policy == nil || v.Policy.Index != tc.index):
				t.Fatalf("policy %+v, want index %d", v.Policy, tc.index)
			}
			ok, why := v.Allows(tc.caller, tc.role)
			if ok != tc.allowed || !strings.Contains(why, tc.why) {
				t.Fatalf("Allows(%s, %s) = %v %q; want %v %q", tc.caller, tc.role, ok, why, tc.allowed, tc.why)
			}
		})
	}
	// Defaults are shown filled in, as Write applies them.
	if p := r.gate.Policy("acme/plant1/filling/line2/filler/other").Policy; p == nil || p.MaxRate != DefaultMaxRate || p.MaxAge != DefaultMaxAge.String() {
		t.Fatalf("defaults not filled in: %+v", p)
	}
	if p := r.gate.Policy("acme/plant1/filling/line2/filler/speed_setpoint").Policy; *p.Min != 60 || *p.Max != 600 || p.Type != "int" || p.MaxRate != "3/min" {
		t.Fatalf("limits: %+v", p)
	}
}

// A lookup spends no token and records nothing: the rate bucket of a tag
// looked up many times is still full.
func TestPolicyLookupIsReadOnly(t *testing.T) {
	r := newRig(t, testPolicies)
	for range 10 {
		r.gate.Policy(speed)
	}
	for i, who := range []string{"api:alice", "api:bob", "api:carol"} { // max_rate 3/min, a share each
		if _, err := r.gate.Write(t.Context(), r.req(speed, model.Int(100+int64(i)), who)); err != nil {
			t.Fatalf("write %d after lookups: %v", i, err)
		}
	}
	if n, err := r.trail.Tail(100); err != nil || len(n) != 3 {
		t.Fatalf("trail has %d entries (%v), want the 3 writes only", len(n), err)
	}
}

// A lookup sees the policies SetPolicies put in force.
func TestPolicyLookupAfterSetPolicies(t *testing.T) {
	r := newRig(t, testPolicies)
	if v := r.gate.Policy(speed); !v.Writable {
		t.Fatalf("before: %+v", v)
	}
	if err := r.gate.SetPolicies([]Policy{{Match: "acme/#"}}); err != nil {
		t.Fatal(err)
	}
	if v := r.gate.Policy(speed); v.Writable || v.Policy == nil || v.Policy.Match != "acme/#" {
		t.Fatalf("after: %+v", v)
	}
}
