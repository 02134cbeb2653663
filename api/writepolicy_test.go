package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/writegate"
)

// schemaCheck checks rec against what the OpenAPI document says of the
// route pattern for its status code.
func schemaCheck(t *testing.T, pattern string, rec *httptest.ResponseRecorder) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	s, err := documentedResponse(t, doc, pattern, rec.Code, rec.Header().Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if err := checkSchema(doc, s, v, "body"); err != nil {
		t.Errorf("%s → %d: %v\n%s", pattern, rec.Code, err, rec.Body.String())
	}
}

// identityFromHeaders stands in for RequireAuth: X-Test-User and
// X-Test-Role become the caller's identity.
func identityFromHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-Test-User"); u != "" {
			r = r.WithContext(WithIdentity(r.Context(), u, security.Role(r.Header.Get("X-Test-Role"))))
		}
		next.ServeHTTP(w, r)
	})
}

func TestWritePolicyEndpoint(t *testing.T) {
	trail, err := audit.Open(audit.Config{File: filepath.Join(t.TempDir(), "audit.jsonl")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	gate, err := writegate.New(writegate.Config{Policies: []writegate.Policy{
		{Match: "plant/l1/mode"},
		{Match: "plant/+/speed", Allow: true, Callers: []string{"api:*"}, Roles: []security.Role{security.Operator}, Type: "int", Min: new(60.0), Max: new(600.0)},
		{Match: "plant/+/recipe", Allow: true, Roles: []security.Role{security.Engineer}},
	}}, trail, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gate.Register("plant", &stubWriter{}); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Status: &fakeStatus{}, Middleware: identityFromHeaders, Extra: (&WritePolicy{Gate: gate}).Mount}).Handler()
	tests := []struct {
		name, query, user string
		role              security.Role
		code              int
		writable, allowed bool
		want              string // in the body
	}{
		{"allowed", "tag=plant/l2/speed", "alice", security.Operator, 200, true, true, `"min":60,"max":600`},
		{"role too low", "tag=plant/l2/recipe", "alice", security.Operator, 200, true, false, "role operator not allowed (policy write_policies[2] needs engineer)"},
		{"engineer", "tag=plant/l2/recipe", "erin", security.Engineer, 200, true, true, `"max_rate":"60/min"`},
		{"denied by policy", "tag=plant/l1/mode", "alice", security.Admin, 200, false, false, "denies writes to plant/l1/mode"},
		{"no policy", "tag=other/x", "alice", security.Admin, 200, false, false, "no policy allows writes to other/x"},
		{"no tag", "", "alice", security.Operator, 400, false, false, "tag is required"},
		{"tag too long", "tag=" + strings.Repeat("a", 2000), "alice", security.Operator, 400, false, false, "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api/v1/write/policy?"+tc.query, nil)
			req.Header.Set("X-Test-User", tc.user)
			req.Header.Set("X-Test-Role", string(tc.role))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%d %s; want %d with %q", rec.Code, rec.Body.String(), tc.code, tc.want)
			}
			schemaCheck(t, "GET /api/v1/write/policy", rec)
			if tc.code != 200 {
				return
			}
			var ans struct {
				Writable bool `json:"writable"`
				You      struct {
					Caller  string `json:"caller"`
					Allowed bool   `json:"allowed"`
				} `json:"you"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
				t.Fatal(err)
			}
			if ans.Writable != tc.writable || ans.You.Allowed != tc.allowed || ans.You.Caller != "api:"+tc.user {
				t.Fatalf("answer %+v; want writable %v allowed %v", ans, tc.writable, tc.allowed)
			}
		})
	}
	// Looking up is not an attempt: the trail is still empty.
	if es, err := trail.Tail(10); err != nil || len(es) != 0 {
		t.Fatalf("lookups recorded %d entries (%v)", len(es), err)
	}
}
