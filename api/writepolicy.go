package api

import (
	"log/slog"
	"net/http"

	"github.com/weir-edge/weir/writegate"
)

// WritePolicies is what GET /api/v1/write/policy asks; *writegate.Gate
// implements it. Policy must not spend rate tokens or record anything: a
// person looking before writing is not an attempt.
type WritePolicies interface {
	Policy(path string) writegate.PolicyView
}

var _ WritePolicies = (*writegate.Gate)(nil)

// WritePolicy serves the write-policy lookup the write page shows before a
// setpoint is sent; mount it with Options.Extra next to Values:
//
//	GET /api/v1/write/policy?tag=PATH   the policy that would decide, and whether the caller may write
//
// Operator, like the write itself: a viewer has nothing to write, and the
// policy list (who may write what) is worth no more than that to them.
type WritePolicy struct {
	Gate WritePolicies
	Log  *slog.Logger
}

// Mount registers the endpoint on mux; nothing when Gate is nil.
func (p *WritePolicy) Mount(mux *http.ServeMux) {
	if p.Gate == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/write/policy", p.policy)
}

// policyAnswer is the body of GET /api/v1/write/policy: the gate's view
// of the tag, and the checks that depend on who asks.
type policyAnswer struct {
	writegate.PolicyView
	You youAnswer `json:"you"`
}

// youAnswer says whether the caller, as the write endpoint would name it,
// passes the policy's caller and role checks. The value, its age and the
// rate buckets are checked only by the write.
type youAnswer struct {
	Caller  string `json:"caller"`
	Role    string `json:"role,omitempty"`
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
}

func (p *WritePolicy) policy(w http.ResponseWriter, r *http.Request) {
	tag := r.URL.Query().Get("tag")
	if tag == "" {
		writeError(w, http.StatusBadRequest, "tag is required", nil)
		return
	}
	if len(tag) > maxTagParam {
		writeError(w, http.StatusBadRequest, "tag is too long", nil)
		return
	}
	v := p.Gate.Policy(tag)
	role, _ := RoleFrom(r.Context())
	c := caller(r)
	ok, why := v.Allows(c, role)
	writeJSON(w, http.StatusOK, policyAnswer{PolicyView: v, You: youAnswer{Caller: c, Role: string(role), Allowed: ok, Reason: why}})
}

// maxTagParam bounds a tag path given as a query parameter.
const maxTagParam = 1024
