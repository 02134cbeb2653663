package ui

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/security"
)

// rig is an API server with the UI mounted, a token per role and a
// cookie-keeping client.
type rig struct {
	srv    *httptest.Server
	authn  *auth.Authenticator
	store  *latest.Store
	tokens map[security.Role]string
}

type fixedStatus struct{ st engine.Status }

func (f fixedStatus) Status() engine.Status { return f.st }

func newRig(t *testing.T) *rig {
	t.Helper()
	hash, err := auth.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Users: []auth.User{{Name: "alice", Role: security.Operator, PasswordHash: hash}}},
		auth.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	store := latest.New(0)
	store.Process([]model.Sample{
		{Path: "plant/line1/speed", Value: model.Float(21.5), SourceTime: time.Now().UnixNano()},
		{Path: "plant/line1/temp", Value: model.Int(70), SourceTime: time.Now().UnixNano()},
		{Path: "plant/line2/speed", Value: model.Float(3), SourceTime: time.Now().UnixNano()},
	})
	st := engine.Status{Ready: true, Components: []engine.ComponentStatus{
		{Kind: "source", Status: pipeline.Status{Name: "plc1", State: "running", Counters: map[string]uint64{"samples": 10}}, Up: true},
		{Kind: "sink", Status: pipeline.Status{Name: "mqtt", State: "retrying", LastError: "connection refused",
			Counters: map[string]uint64{"samples_written": 3}}},
	}}
	u, err := New(Options{Sessions: a, Status: fixedStatus{st}, Values: store, NodeID: "gw1", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{Status: fixedStatus{st}, Auth: a, Extra: u.Mount}).Handler())
	t.Cleanup(srv.Close)
	r := &rig{srv: srv, authn: a, store: store, tokens: map[security.Role]string{}}
	for _, role := range security.Roles {
		tok, _, err := a.Tokens().Create(string(role)+"-user", role, time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		r.tokens[role] = tok
	}
	return r
}

func (r *rig) client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 2 * time.Minute}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

func (r *rig) login(t *testing.T, c *http.Client, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(r.srv.URL+"/ui/login", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestLoginPagesLogout(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	resp, body := get(t, c, r.srv.URL+"/")
	if resp.Request.URL.Path != "/ui/login" || !strings.Contains(body, `name="password"`) {
		t.Fatalf("/ without a session ended at %s", resp.Request.URL)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if resp, body := r.login(t, c, url.Values{"user": {"alice"}, "password": {"wrong"}}); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(body, "Wrong user") {
		t.Fatalf("bad password: %d", resp.StatusCode)
	}
	resp, body = r.login(t, c, url.Values{"user": {"alice"}, "password": {"correct horse"}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/ui/" {
		t.Fatalf("good password: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for _, want := range []string{`id="user">alice<`, "operator", "plc1", "connection refused", `hx-get="/ui/overview/status"`} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	m := csrfMeta.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf-token meta")
	}
	_, body = get(t, c, r.srv.URL+"/ui/tags?path=plant/line1")
	for _, want := range []string{`data-tag="plant/line1/speed"`, ">21.5<", `data-stream="plant/line1/&#43;"`, "Write…"} {
		if !strings.Contains(body, want) {
			t.Errorf("tags page lacks %q", want)
		}
	}
	// Static files: versioned URL, cached for a year.
	js := regexp.MustCompile(`src="(/ui/static/[0-9a-f]+/js/weir.js)"`).FindStringSubmatch(body)
	if js == nil {
		t.Fatal("no weir.js")
	}
	resp, _ = get(t, c, r.srv.URL+js[1])
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("static: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	// Logout needs the CSRF token.
	req, _ := http.NewRequest("POST", r.srv.URL+"/ui/logout", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %v %v", resp.StatusCode, err)
	}
	req, _ = http.NewRequest("POST", r.srv.URL+"/ui/logout", nil)
	req.Header.Set("X-CSRF-Token", m[1])
	req.Header.Set("HX-Request", "true")
	resp, err := c.Do(req)
	if err != nil || resp.Header.Get("HX-Redirect") != "/ui/login" {
		t.Fatalf("logout: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if resp, _ := get(t, c, r.srv.URL+"/ui/tags"); resp.Request.URL.Path != "/ui/login" {
		t.Fatalf("after logout /ui/tags ended at %s", resp.Request.URL)
	}
}

// A level with more tags than a page shows one page of rows and a pager.
func TestTagsPaginate(t *testing.T) {
	r := newRig(t)
	var batch []model.Sample
	for i := range 10_000 {
		batch = append(batch, model.Sample{Path: fmt.Sprintf("big/t%05d", i), Value: model.Int(int64(i))})
	}
	r.store.Process(batch)
	c := r.client(t)
	r.login(t, c, url.Values{"token": {r.tokens[security.Viewer]}})
	_, body := get(t, c, r.srv.URL+"/ui/tags?path=big&page=3")
	if n := strings.Count(body, "data-tag="); n != tagsPageSize {
		t.Fatalf("%d rows, want %d", n, tagsPageSize)
	}
	if !strings.Contains(body, `data-tag="big/t00150"`) || !strings.Contains(body, "page 4 of 200") {
		t.Error("page 3 is not rows 150..199")
	}
	if strings.Contains(body, "Write…") {
		t.Error("a viewer is offered a write")
	}
	_, body = get(t, c, r.srv.URL+"/ui/tags?path=big&q=T0999")
	if n := strings.Count(body, "data-tag="); n != 10 || !strings.Contains(body, `data-tag="big/t09990"`) || !strings.Contains(body, "10 tags matching") {
		t.Errorf("search: %d rows", n)
	}
	_, body = get(t, c, r.srv.URL+"/ui/tags")
	for _, want := range []string{`href="/ui/tags?path=big">big/</a>`, "10000 tags", `href="/ui/tags?path=plant">plant/</a>`, "3 tags"} {
		if !strings.Contains(body, want) {
			t.Errorf("root lacks %q", want)
		}
	}
}

type fakeSessions struct {
	info auth.SessionInfo
	ok   bool
}

func (f fakeSessions) Login(*http.Request, string, string, string) (*http.Cookie, auth.Decision) {
	return nil, auth.Decision{Outcome: auth.Unauthenticated}
}
func (f fakeSessions) Logout(*http.Request) *http.Cookie {
	return &http.Cookie{Name: auth.SessionCookie}
}
func (f fakeSessions) Session(*http.Request) (auth.SessionInfo, bool) { return f.info, f.ok }

// A page asks for a role; below it the layout says so and the handler
// never runs. Without a browser session a page goes to the login form.
func TestPageRole(t *testing.T) {
	for name, tc := range map[string]struct {
		sess     fakeSessions
		hx       bool
		code     int
		contains string
	}{
		"engineer":      {fakeSessions{auth.SessionInfo{User: "e", Role: security.Engineer, CSRF: "c"}, true}, false, 200, "handler ran"},
		"admin":         {fakeSessions{auth.SessionInfo{User: "a", Role: security.Admin, CSRF: "c"}, true}, false, 200, "handler ran"},
		"operator":      {fakeSessions{auth.SessionInfo{User: "o", Role: security.Operator, CSRF: "c"}, true}, false, 403, "Not allowed"},
		"no session":    {fakeSessions{}, false, http.StatusSeeOther, ""},
		"no session hx": {fakeSessions{}, true, http.StatusUnauthorized, ""},
	} {
		t.Run(name, func(t *testing.T) {
			u, err := New(Options{Sessions: tc.sess})
			if err != nil {
				t.Fatal(err)
			}
			p := Page{Name: "config", Title: "Config", Path: "/ui/config", Role: security.Engineer}
			h := u.page(p, func(w http.ResponseWriter, r *http.Request) {
				if SessionFrom(r.Context()).CSRF != "c" {
					t.Error("no session in the handler's context")
				}
				io.WriteString(w, "handler ran")
			})
			req := httptest.NewRequest("GET", "/ui/config", nil)
			if tc.hx {
				req.Header.Set("HX-Request", "true")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.contains) {
				t.Fatalf("%d %q", rec.Code, rec.Body.String())
			}
			if tc.code == 403 && strings.Contains(rec.Body.String(), "handler ran") {
				t.Fatal("the handler ran for a role below the page's")
			}
			if !tc.sess.ok && !tc.hx && rec.Header().Get("Location") != "/ui/login" {
				t.Fatalf("Location %q", rec.Header().Get("Location"))
			}
			if tc.hx && rec.Header().Get("HX-Redirect") != "/ui/login" {
				t.Fatalf("HX-Redirect %q", rec.Header().Get("HX-Redirect"))
			}
		})
	}
}

// Static files: the current version is cached for a year, another one is
// served uncached (a page from before an upgrade), nothing outside
// ui/static is reachable.
func TestStatic(t *testing.T) {
	u, err := New(Options{Sessions: fakeSessions{}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	u.Mount(mux)
	for _, tc := range []struct {
		path  string
		code  int
		cache string
	}{
		{u.Static("js/weir.js"), 200, "immutable"},
		{u.Static("vendor/htmx/htmx.min.js"), 200, "immutable"},
		{"/ui/static/0123456789ab/css/weir.css", 200, "no-cache"},
		{u.Static("js/nope.js"), 404, ""},
		{u.Static("js"), 404, ""},
		{"/ui/static/" + u.version + "/", 404, ""},
		{"/ui/static/" + u.version + "/%2e%2e/ui.go", 404, ""},
		{"/ui/static/weir.css", 404, ""},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.code && !(tc.code == 404 && rec.Code >= 300 && rec.Code < 400) {
			t.Errorf("%s: %d, want %d", tc.path, rec.Code, tc.code)
		}
		if tc.cache != "" && !strings.Contains(rec.Header().Get("Cache-Control"), tc.cache) {
			t.Errorf("%s: Cache-Control %q", tc.path, rec.Header().Get("Cache-Control"))
		}
	}
}
