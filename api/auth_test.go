package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/writegate"
)

// secEvents collects security events.
type secEvents struct {
	mu  sync.Mutex
	evs []security.Event
}

func (e *secEvents) Record(_ context.Context, ev security.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *secEvents) find(k security.Kind) (security.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.evs) - 1; i >= 0; i-- {
		if e.evs[i].Kind == k {
			return e.evs[i], true
		}
	}
	return security.Event{}, false
}

// gateSpy records the request the write endpoint passes on.
type gateSpy struct {
	mu  sync.Mutex
	req writegate.Request
}

func (g *gateSpy) Write(_ context.Context, req writegate.Request) (writegate.Result, error) {
	g.mu.Lock()
	g.req = req
	g.mu.Unlock()
	return writegate.Result{}, nil
}

type authRig struct {
	h      http.Handler
	a      *auth.Authenticator
	events *secEvents
	gate   *gateSpy
	tokens map[security.Role]string
}

func newAuthRig(t testing.TB, cfg auth.Config) *authRig {
	t.Helper()
	ev := &secEvents{}
	a, err := auth.New(cfg, auth.Options{DataDir: t.TempDir(), Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	m, err := alarms.New(alarms.Config{}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Define(alarms.Def{Name: "hot", Priority: alarms.High, Message: "too hot"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Raise("hot", time.Now()); err != nil {
		t.Fatal(err)
	}
	gate := &gateSpy{}
	v := &Values{Gate: gate}
	al := &Alarms{Store: m, Events: ev}
	tk := &Tokens{Store: a.Tokens(), Events: ev}
	hi := &History{Store: newHistoryStore(t)}
	cf := &Config{Manager: &fakeConfig{}}
	h := New(Options{Status: &fakeStatus{}, Auth: a, Extra: func(mux *http.ServeMux) {
		v.Mount(mux)
		al.Mount(mux)
		tk.Mount(mux)
		hi.Mount(mux)
		cf.Mount(mux)
		(&Flows{Mapper: fixedFlows{sampleFlowMap}}).Mount(mux)
	}}).Handler()
	r := &authRig{h: h, a: a, events: ev, gate: gate, tokens: map[security.Role]string{}}
	for _, role := range security.Roles {
		tok, _, err := a.Tokens().Create(string(role)+"-user", role, time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		r.tokens[role] = tok
	}
	return r
}

func (r *authRig) do(method, path, body string, role security.Role) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.10:41000"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+r.tokens[role])
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec
}

// Every route but /healthz and /readyz refuses a request without
// credentials (401 with a challenge) and one whose role is too low (403),
// and records why.
func TestRouteRoles(t *testing.T) {
	r := newAuthRig(t, auth.Config{})
	routes := []routeCase{
		{"GET", "/healthz", "", ""},
		{"GET", "/readyz", "", ""},
		{"GET", "/metrics", "", security.Viewer},
		{"GET", "/status", "", security.Viewer},
		{"GET", "/api/v1/openapi.json", "", security.Viewer},
		{"GET", "/api/v1/alarms", "", security.Viewer},
		{"GET", "/api/v1/alarms/hot", "", security.Viewer},
		{"GET", "/api/v1/history?tag=plant/speed", "", security.Viewer},
		{"GET", "/api/v1/stream?tags=plant/%23", "", security.Viewer},
		{"GET", "/api/v1/tags?prefix=plant", "", security.Viewer},
		{"POST", "/api/v1/write", `{"path":"plant/speed","value":300,"reason":"test"}`, security.Operator},
		{"GET", "/api/v1/write/policy", "", security.Operator},
		{"GET", "/api/v1/audit/verify", "", security.Viewer},
		{"POST", "/api/v1/alarms/hot/ack", `{"comment":"seen"}`, security.Operator},
		{"POST", "/api/v1/alarms/hot/shelve", `{"duration":"1h"}`, security.Operator},
		{"GET", "/api/v1/tokens", "", security.Admin},
		{"POST", "/api/v1/tokens", `{"user":"x","role":"viewer","expires":"1h"}`, security.Admin},
		{"DELETE", "/api/v1/tokens/0123456789abcdef", "", security.Admin},
		{"GET", "/no/such/route", "", security.Viewer},
		{"PUT", "/api/v1/settings", "{}", security.Admin},
		{"GET", "/healthz/../api/v1/tokens", "", security.Admin},
		{"GET", "/", "", ""},
		{"GET", "/ui/login", "", ""},
		{"GET", "/favicon.ico", "", ""},
		{"POST", "/ui/login", "user=a&password=b", ""},
		{"GET", "/ui/static/v1/css/weir.css", "", ""},
		{"POST", "/ui/logout", "", security.Viewer},
		{"POST", "/ui/static/x", "", security.Viewer},
	}
	checkRouteRoles(t, r, routes)
	// A rig of its own: access-denied events are rate-limited per user.
	checkRouteRoles(t, newAuthRig(t, auth.Config{}), []routeCase{
		{"GET", "/api/v1/config", "", security.Engineer},
		{"POST", "/api/v1/config/validate", "sources: []", security.Engineer},
		{"POST", "/api/v1/config/apply", "sources: []", security.Engineer},
		{"POST", "/api/v1/config/reload", "", security.Engineer},
	})
}

// routeCase is a request and the role it needs ("" public).
type routeCase struct {
	method, path, body string
	need               security.Role
}

// checkRouteRoles asserts that each route answers 401 without
// credentials and 403 (with an AccessDenied event) to every role below
// the one it needs.
func checkRouteRoles(t *testing.T, r *authRig, routes []routeCase) {
	t.Helper()
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			rec := r.do(rt.method, rt.path, rt.body, "")
			if rt.need == "" {
				if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden {
					t.Fatalf("public route: %d", rec.Code)
				}
				return
			}
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("without credentials: %d %q, want 401 with WWW-Authenticate", rec.Code, rec.Header().Get("WWW-Authenticate"))
			}
			if ev, ok := r.events.find(security.LoginFailed); !ok || ev.Remote != "192.0.2.10:41000" {
				t.Errorf("no LoginFailed event with the remote address: %+v", ev)
			}
			for _, role := range security.Roles {
				rec := r.do(rt.method, rt.path, rt.body, role)
				switch {
				case role.Includes(rt.need) && (rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden):
					t.Errorf("%s: %d, want allowed", role, rec.Code)
				case !role.Includes(rt.need) && rec.Code != http.StatusForbidden:
					t.Errorf("%s: %d, want 403", role, rec.Code)
				case !role.Includes(rt.need):
					ev, ok := r.events.find(security.AccessDenied)
					if !ok || ev.Actor != "api:"+string(role)+"-user" || ev.Object != rt.method+" "+rt.path {
						t.Errorf("%s: AccessDenied event %+v", role, ev)
					}
				}
			}
		})
	}
}

// A browser opening a UI page without a session goes to the login form
// (htmx: HX-Redirect), not to a JSON 401; "/" is only a redirect, not a
// public prefix.
func TestUIPagesRedirectToLogin(t *testing.T) {
	r := newAuthRig(t, auth.Config{})
	for _, p := range []string{"/ui/", "/ui", "/ui/tags"} {
		if rec := r.do("GET", p, "", ""); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/login" {
			t.Errorf("GET %s: %d %q, want 303 to /ui/login", p, rec.Code, rec.Header().Get("Location"))
		}
	}
	req := httptest.NewRequest("GET", "/ui/overview/fragment", nil)
	req.Header.Set("HX-Request", "true")
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("HX-Redirect") != "/ui/login" {
		t.Errorf("htmx request: %d %q, want 401 with HX-Redirect", rec.Code, rec.Header().Get("HX-Redirect"))
	}
	if role, public := RequiredRole("GET", "/status2", false); public || role != security.Viewer {
		t.Errorf("the row for / is exact: /status2 = %q public %v", role, public)
	}
	if rec := r.do("GET", "/ui/", "", ""); !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") ||
		rec.Header().Get("Referrer-Policy") != "same-origin" {
		t.Errorf("UI CSP %q, Referrer-Policy %q", rec.Header().Get("Content-Security-Policy"), rec.Header().Get("Referrer-Policy"))
	}
	if rec := r.do("GET", "/status", "", ""); rec.Header().Get("Referrer-Policy") != "no-referrer" ||
		strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src") {
		t.Errorf("API answers: CSP %q, Referrer-Policy %q", rec.Header().Get("Content-Security-Policy"), rec.Header().Get("Referrer-Policy"))
	}
}

func TestMetricsPublic(t *testing.T) {
	r := newAuthRig(t, auth.Config{Metrics: auth.MetricsPublic})
	if rec := r.do("GET", "/metrics", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("/metrics with metrics: public = %d", rec.Code)
	}
	if rec := r.do("GET", "/status", "", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("/status = %d, want 401", rec.Code)
	}
}

// The write gate gets the caller, role and remote address of the
// authenticated user, never a name the body chose.
func TestWriteCarriesIdentity(t *testing.T) {
	r := newAuthRig(t, auth.Config{})
	rec := r.do("POST", "/api/v1/write", `{"path":"plant/speed","value":300,"reason":"test"}`, security.Engineer)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	r.gate.mu.Lock()
	got := r.gate.req
	r.gate.mu.Unlock()
	if got.Caller != "api:engineer-user" || got.Role != security.Engineer || got.Remote != "192.0.2.10:41000" {
		t.Fatalf("gate got caller %q role %q remote %q", got.Caller, got.Role, got.Remote)
	}
}

func TestAlarmCommandEvent(t *testing.T) {
	r := newAuthRig(t, auth.Config{})
	long := strings.Repeat("x", 5000)
	if rec := r.do("POST", "/api/v1/alarms/hot/ack", `{"comment":"`+long+`"}`, security.Operator); rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	ev, ok := r.events.find(security.AlarmCommand)
	if !ok || ev.Actor != "api:operator-user" || ev.Remote != "192.0.2.10:41000" || ev.Object != "hot" || ev.Outcome != "ok" ||
		len(ev.Detail) > 300 {
		t.Fatalf("event %+v", ev)
	}
	if rec := r.do("POST", "/api/v1/alarms/hot/unshelve", `{}`, security.Operator); rec.Code != http.StatusConflict {
		t.Fatalf("unshelve: %d", rec.Code)
	}
	if ev, _ := r.events.find(security.AlarmCommand); ev.Outcome != "refused" {
		t.Fatalf("refused command: %+v", ev)
	}
}

func TestTokenEndpoints(t *testing.T) {
	r := newAuthRig(t, auth.Config{})
	rec := r.do("POST", "/api/v1/tokens", `{"user":"historian","role":"viewer","expires":"24h","note":"pi"}`, security.Admin)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body.String())
	}
	var created struct {
		Token string `json:"token"`
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.State != "active" {
		t.Fatalf("%v %s", err, rec.Body.String())
	}
	if ev, ok := r.events.find(security.TokenCreated); !ok || ev.Object != "token "+created.ID || ev.Actor != "api:admin-user" ||
		strings.Contains(ev.Detail, created.Token) {
		t.Fatalf("TokenCreated event %+v", ev)
	}
	r.tokens["new"] = created.Token
	if rec := r.do("GET", "/api/v1/alarms", "", "new"); rec.Code != http.StatusOK {
		t.Fatalf("new token: %d", rec.Code)
	}
	list := r.do("GET", "/api/v1/tokens", "", security.Admin)
	if list.Code != http.StatusOK || !strings.Contains(list.Body.String(), created.ID) || strings.Contains(list.Body.String(), "hash") ||
		strings.Contains(list.Body.String(), created.Token) {
		t.Fatalf("list: %d %s", list.Code, list.Body.String())
	}
	for name, body := range map[string]string{
		"no expiry":    `{"user":"x","role":"viewer"}`,
		"too long":     `{"user":"x","role":"viewer","expires":"100000h"}`,
		"bad role":     `{"user":"x","role":"root","expires":"1h"}`,
		"bad user":     `{"user":"a b","role":"viewer","expires":"1h"}`,
		"unknown keys": `{"user":"x","role":"viewer","expires":"1h","hash":"x"}`,
	} {
		if rec := r.do("POST", "/api/v1/tokens", body, security.Admin); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body.String())
		}
	}
	if rec := r.do("DELETE", "/api/v1/tokens/"+created.ID, "", security.Admin); rec.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body.String())
	}
	if ev, ok := r.events.find(security.TokenRevoked); !ok || ev.Object != "token "+created.ID {
		t.Fatalf("TokenRevoked event %+v", ev)
	}
	if rec := r.do("GET", "/api/v1/alarms", "", "new"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d, want 401", rec.Code)
	}
	if rec := r.do("DELETE", "/api/v1/tokens/ffffffffffffffff", "", security.Admin); rec.Code != http.StatusNotFound {
		t.Fatalf("revoke unknown: %d", rec.Code)
	}
}

// TestRetryAfterOnBackoff, over a real connection from 127.0.0.1: five bad
// tokens start the back-off; a password (even the right one) then gets 429
// with Retry-After unchecked, while a valid token still gets in.
func TestRetryAfterOnBackoff(t *testing.T) {
	hash, err := auth.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	r := newAuthRig(t, auth.Config{Users: []auth.User{{Name: "alice", Role: security.Admin, PasswordHash: hash}}})
	srv := httptest.NewServer(r.h)
	defer srv.Close()
	get := func(set func(*http.Request)) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+"/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		set(req)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	bearer := func(tok string) func(*http.Request) {
		return func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+tok) }
	}
	bad := "weir_0123456789abcdef_" + strings.Repeat("c", 64)
	for range 5 {
		if resp := get(bearer(bad)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token: %d", resp.StatusCode)
		}
	}
	for name, c := range map[string]struct {
		set  func(*http.Request)
		want int
	}{
		"right password": {func(req *http.Request) { req.SetBasicAuth("alice", "correct horse") }, http.StatusTooManyRequests},
		"bad token":      {bearer(bad), http.StatusTooManyRequests},
		"valid token":    {bearer(r.tokens[security.Admin]), http.StatusOK},
	} {
		resp := get(c.set)
		if resp.StatusCode != c.want {
			t.Errorf("%s after 5 failures: %d, want %d", name, resp.StatusCode, c.want)
		}
		if c.want == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", name)
		}
	}
}
