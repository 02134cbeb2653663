package writegate

import (
	"fmt"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

// PolicyView is what the gate would apply to a write of one tag, shown to
// a person before they write it (the UI's write page, GET
// /api/v1/write/policy). It is read from the compiled policies and the
// registered writers only: looking a tag up takes no rate token and
// records nothing.
type PolicyView struct {
	Path string `json:"path"`
	// Writable: a policy allows writes to the tag and a source serves it.
	// Whether a given caller may is Allows' question.
	Writable bool `json:"writable"`
	// Reason says why the tag is not writable ("" when it is), in the words
	// Write would refuse with.
	Reason string `json:"reason,omitempty"`
	// Served: a source registered a writer covering the path.
	Served bool `json:"served"`
	// Policy is the policy that decides (the first whose match covers the
	// path), nil when none does; Index is its place in write_policies.
	Policy *PolicySummary `json:"policy,omitempty"`
}

// PolicySummary is the deciding policy with its defaults filled in.
type PolicySummary struct {
	Index   int             `json:"index"`
	Match   string          `json:"match"`
	Allow   bool            `json:"allow"`
	Callers []string        `json:"callers,omitempty"`
	Roles   []security.Role `json:"roles,omitempty"`
	Type    string          `json:"type,omitempty"`
	Min     *float64        `json:"min,omitempty"`
	Max     *float64        `json:"max,omitempty"`
	MaxRate string          `json:"max_rate,omitempty"`
	MaxAge  string          `json:"max_age,omitempty"`
}

// Policy tells what applies to a write of path: the deciding policy, and
// whether the tag can be written at all. It is safe to call concurrently
// with Write and SetPolicies.
func (g *Gate) Policy(path string) PolicyView {
	v := PolicyView{Path: path}
	if err := model.ValidatePath(path); err != nil {
		v.Reason = "invalid path: " + err.Error()
		return v
	}
	v.Served = g.writer(path) != nil
	var p *policy
	policies := *g.policies.Load() // the list in force (SetPolicies swaps it whole)
	for i := range policies {
		if matchPath(policies[i].Match, path) {
			p = &policies[i]
			break
		}
	}
	switch {
	case p == nil:
		v.Reason = "no policy allows writes to " + path
		return v
	case !p.Allow:
		v.Policy = &PolicySummary{Index: p.idx, Match: p.Match}
		v.Reason = fmt.Sprintf("policy write_policies[%d] (%s) denies writes to %s", p.idx, p.Match, path)
		return v
	}
	v.Policy = &PolicySummary{Index: p.idx, Match: p.Match, Allow: true, Callers: p.Callers, Roles: p.Roles,
		Type: p.Type, Min: p.Min, Max: p.Max, MaxRate: p.rate.src, MaxAge: p.maxAge.String()}
	if !v.Served {
		v.Reason = "no source serves " + path
		return v
	}
	v.Writable = true
	return v
}

// Allows reports whether the deciding policy lets caller, with role,
// write the tag — the caller and role checks of Write, nothing that
// depends on the value, the time or the rate buckets — and why not.
func (v PolicyView) Allows(caller string, role security.Role) (bool, string) {
	if !v.Writable {
		return false, v.Reason
	}
	p := v.Policy
	if len(p.Callers) > 0 && !callerAllowed(p.Callers, caller) {
		return false, "caller " + caller + " not allowed"
	}
	if len(p.Roles) > 0 && !roleAllowed(p.Roles, role) {
		r := string(role)
		if r == "" {
			r = "(none)"
		}
		return false, fmt.Sprintf("role %s not allowed (policy write_policies[%d] needs %s)", r, p.Index, rolesText(p.Roles))
	}
	return true, ""
}
