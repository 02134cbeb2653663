package auth

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/security"
)

// loginForm is the request the UI's login form makes.
func loginForm(remote string) *http.Request {
	r := httptest.NewRequest("POST", "/ui/login", nil)
	r.RemoteAddr = remote
	return r
}

// withCookie is a request carrying a session cookie (and a CSRF header
// when csrf is not empty).
func withCookie(method, cookie, csrf string) *http.Request {
	r := httptest.NewRequest(method, "/api/v1/write", nil)
	r.RemoteAddr = "10.0.0.5:4000"
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
	if csrf != "" {
		r.Header.Set(CSRFHeader, csrf)
	}
	return r
}

func TestLogin(t *testing.T) {
	cfg := Config{Users: []User{{Name: "alice", Role: security.Operator, PasswordHash: testHash()},
		{Name: "victor", Role: security.Viewer, PasswordHash: testHash()}}}
	r := newRig(t, cfg)
	tok, _, _ := r.tokens.Create("scada", security.Engineer, time.Hour, "")
	for name, tc := range map[string]struct {
		user, pass, token string
		remote            string
		want              Outcome
		role              security.Role
	}{
		"good password":           {"alice", "correct horse", "", "127.0.0.1:1", OK, security.Operator},
		"viewer":                  {"victor", "correct horse", "", "127.0.0.1:1", OK, security.Viewer},
		"wrong password":          {"alice", "wrong", "", "127.0.0.1:1", Unauthenticated, ""},
		"unknown user":            {"mallory", "correct horse", "", "127.0.0.1:1", Unauthenticated, ""},
		"empty":                   {"", "", "", "127.0.0.1:1", Unauthenticated, ""},
		"token":                   {"", "", tok, "10.0.0.7:1", OK, security.Engineer},
		"wrong token":             {"", "", tok[:len(tok)-4] + "ffff", "10.0.0.7:1", Unauthenticated, ""},
		"password without TLS":    {"alice", "correct horse", "", "10.0.0.8:1", Unauthenticated, ""},
		"user with colon refused": {"al:ice", "correct horse", "", "127.0.0.1:1", Unauthenticated, ""},
	} {
		t.Run(name, func(t *testing.T) {
			req := loginForm(tc.remote)
			c, d := r.a.Login(req, tc.user, tc.pass, tc.token)
			if d.Outcome != tc.want {
				t.Fatalf("outcome %v, want %v", d.Outcome, tc.want)
			}
			if tc.want != OK {
				if c != nil {
					t.Fatal("a cookie for a failed login")
				}
				return
			}
			if c.Name != SessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || len(c.Value) != 43 {
				t.Fatalf("cookie %+v", c)
			}
			s, ok := r.a.Session(withCookie("GET", c.Value, ""))
			if !ok || s.Role != tc.role || len(s.CSRF) != 43 || s.CSRF == c.Value {
				t.Fatalf("session %+v %v", s, ok)
			}
		})
	}
	if n := r.events.count(security.LoginFailed); n < 5 {
		t.Errorf("%d LoginFailed events for the failed logins", n)
	}
}

func TestSessionCookieSecureOverTLS(t *testing.T) {
	r := newRig(t, Config{})
	tok, _, _ := r.tokens.Create("scada", security.Viewer, time.Hour, "")
	req := loginForm("10.0.0.7:1")
	req.TLS = &tls.ConnectionState{}
	c, d := r.a.Login(req, "", "", tok)
	if d.Outcome != OK || !c.Secure {
		t.Fatalf("over TLS: %v %+v", d.Outcome, c)
	}
	if out := r.a.Logout(req); !out.Secure || out.MaxAge >= 0 {
		t.Fatalf("logout cookie %+v", out)
	}
}

// A session is a credential on every route; unsafe methods need its CSRF
// token; the role of the login holds.
func TestSessionCheck(t *testing.T) {
	r := newRig(t, Config{Users: []User{{Name: "alice", Role: security.Operator, PasswordHash: testHash()}}})
	c, d := r.a.Login(loginForm("127.0.0.1:1"), "alice", "correct horse", "")
	if d.Outcome != OK {
		t.Fatal(d.Outcome)
	}
	s, _ := r.a.Session(withCookie("GET", c.Value, ""))
	for name, tc := range map[string]struct {
		method, cookie, csrf string
		need                 security.Role
		want                 Outcome
	}{
		"GET":                 {"GET", c.Value, "", security.Viewer, OK},
		"HEAD":                {"HEAD", c.Value, "", security.Viewer, OK},
		"POST with CSRF":      {"POST", c.Value, s.CSRF, security.Operator, OK},
		"POST without CSRF":   {"POST", c.Value, "", security.Operator, Forbidden},
		"POST wrong CSRF":     {"POST", c.Value, s.CSRF[:42] + "x", security.Operator, Forbidden},
		"POST cookie as CSRF": {"POST", c.Value, c.Value, security.Operator, Forbidden},
		"DELETE without":      {"DELETE", c.Value, "", security.Operator, Forbidden},
		"role too low":        {"POST", c.Value, s.CSRF, security.Admin, Forbidden},
		"unknown session":     {"GET", strings.Repeat("A", 43), "", security.Viewer, Unauthenticated},
		"malformed cookie":    {"GET", "abc", "", security.Viewer, Unauthenticated},
	} {
		t.Run(name, func(t *testing.T) {
			got := r.a.Check(withCookie(tc.method, tc.cookie, tc.csrf), tc.need)
			if got.Outcome != tc.want {
				t.Fatalf("outcome %v, want %v", got.Outcome, tc.want)
			}
			// A missing or wrong CSRF token is told apart from a role too
			// low, so that the API's answer says which.
			if wantCSRF := tc.want == Forbidden && tc.need != security.Admin; got.CSRF != wantCSRF {
				t.Fatalf("CSRF %v, want %v", got.CSRF, wantCSRF)
			}
			if tc.want == OK && (got.Identity.User != "alice" || got.Identity.Method != "session") {
				t.Fatalf("identity %+v", got.Identity)
			}
		})
	}
	ev := r.events.all()
	found := false
	for _, e := range ev {
		if e.Kind == security.AccessDenied && strings.Contains(e.Detail, "CSRF") && e.Actor == "api:alice" {
			found = true
		}
	}
	if !found {
		t.Error("no AccessDenied event for a missing CSRF token")
	}
	// An Authorization header wins over the cookie: a script sending a
	// token is judged by the token.
	req := withCookie("POST", c.Value, "")
	req.Header.Set("Authorization", "Bearer weir_0000000000000000_"+strings.Repeat("0", 64))
	if d := r.a.Check(req, security.Viewer); d.Outcome != Unauthenticated {
		t.Fatalf("bad token beside a good cookie: %v", d.Outcome)
	}
}

func TestSessionExpiry(t *testing.T) {
	r := newRig(t, Config{})
	tok, _, _ := r.tokens.Create("scada", security.Viewer, 48*time.Hour, "")
	login := func() string {
		c, d := r.a.Login(loginForm("10.0.0.7:1"), "", "", tok)
		if d.Outcome != OK {
			t.Fatal(d.Outcome)
		}
		return c.Value
	}
	check := func(c string) Outcome { return r.a.Check(withCookie("GET", c, ""), security.Viewer).Outcome }

	// Idle: used every 29 minutes it lives; 30 minutes unused ends it.
	c := login()
	for range 4 {
		r.clock.Add(SessionIdle - time.Minute)
		if got := check(c); got != OK {
			t.Fatalf("used within the idle timeout: %v", got)
		}
	}
	r.clock.Add(SessionIdle)
	if got := check(c); got != Unauthenticated {
		t.Fatalf("idle for %s: %v", SessionIdle, got)
	}
	if n := r.events.count(security.Logout); n != 1 {
		t.Fatalf("%d Logout (expired) events", n)
	}

	// Absolute: even in constant use, 12 hours after login.
	c = login()
	for el := time.Duration(0); el < SessionMaxAge-SessionIdle; el += 20 * time.Minute {
		r.clock.Add(20 * time.Minute)
		if got := check(c); got != OK {
			t.Fatalf("%s after login: %v", el, got)
		}
	}
	r.clock.Add(SessionIdle - time.Minute)
	if got := check(c); got != Unauthenticated {
		t.Fatalf("after %s: %v", SessionMaxAge, got)
	}

	// Logout ends it at once and is recorded.
	c = login()
	req := withCookie("POST", c, "")
	before := r.events.count(security.Logout)
	r.a.Logout(req)
	if got := check(c); got != Unauthenticated {
		t.Fatalf("after logout: %v", got)
	}
	if r.events.count(security.Logout) != before+1 {
		t.Fatal("logout not recorded")
	}
}

// Revoking a token ends the web sessions opened with it.
func TestSessionEndsWithItsToken(t *testing.T) {
	r := newRig(t, Config{})
	tok, info, _ := r.tokens.Create("scada", security.Viewer, time.Hour, "")
	c, d := r.a.Login(loginForm("10.0.0.7:1"), "", "", tok)
	if d.Outcome != OK {
		t.Fatal(d.Outcome)
	}
	if got := r.a.Check(withCookie("GET", c.Value, ""), security.Viewer).Outcome; got != OK {
		t.Fatal(got)
	}
	if _, err := r.tokens.Revoke(info.ID); err != nil {
		t.Fatal(err)
	}
	if got := r.a.Check(withCookie("GET", c.Value, ""), security.Viewer).Outcome; got != Unauthenticated {
		t.Fatalf("after revoking its token: %v", got)
	}
	if _, ok := r.a.Session(withCookie("GET", c.Value, "")); ok {
		t.Fatal("the session is still there")
	}
}

// The table is bounded: the least recently used session goes first.
func TestSessionsBounded(t *testing.T) {
	r := newRig(t, Config{RateLimit: "100000/min"}) // 1,010 logins at once
	tok, _, _ := r.tokens.Create("scada", security.Viewer, time.Hour, "")
	var first, kept string
	for i := range maxSessions + 10 {
		c, d := r.a.Login(loginForm("10.0.0.7:1"), "", "", tok)
		if d.Outcome != OK {
			t.Fatal(d.Outcome)
		}
		switch i {
		case 0:
			first = c.Value
		case 1:
			kept = c.Value
		}
		r.clock.Add(time.Millisecond)
		if i == maxSessions-5 {
			r.a.Check(withCookie("GET", kept, ""), security.Viewer) // touched: younger than the rest
		}
	}
	r.a.sessions.mu.Lock()
	n := len(r.a.sessions.m)
	r.a.sessions.mu.Unlock()
	if n != maxSessions {
		t.Fatalf("%d sessions, want %d", n, maxSessions)
	}
	if _, ok := r.a.Session(withCookie("GET", first, "")); ok {
		t.Error("the oldest session survived")
	}
	if _, ok := r.a.Session(withCookie("GET", kept, "")); !ok {
		t.Error("a recently used session was evicted")
	}
}

// A session's cookie gets in during a back-off (256 random bits cannot be
// guessed); a password login does not.
func TestSessionDuringBackoff(t *testing.T) {
	r := newRig(t, Config{Users: []User{{Name: "alice", Role: security.Operator, PasswordHash: testHash()}}})
	c, _ := r.a.Login(loginForm("127.0.0.1:1"), "alice", "correct horse", "")
	for range failLimit {
		r.a.Login(loginForm("127.0.0.1:1"), "alice", "wrong", "")
	}
	if _, d := r.a.Login(loginForm("127.0.0.1:1"), "alice", "correct horse", ""); d.Outcome != Throttled {
		t.Fatalf("password login during back-off: %v", d.Outcome)
	}
	req := withCookie("GET", c.Value, "")
	req.RemoteAddr = "127.0.0.1:2"
	if d := r.a.Check(req, security.Viewer); d.Outcome != OK {
		t.Fatalf("session during back-off: %v", d.Outcome)
	}
}

// Nothing recorded or logged holds the session id, the CSRF token or the
// password typed into the form.
func TestSessionNoSecrets(t *testing.T) {
	r := newRig(t, Config{Users: []User{{Name: "alice", Role: security.Operator, PasswordHash: testHash()}}})
	c, _ := r.a.Login(loginForm("127.0.0.1:1"), "alice", "correct horse", "")
	r.a.Login(loginForm("127.0.0.1:1"), "alice", "hunter2-secret", "")
	s, _ := r.a.Session(withCookie("GET", c.Value, ""))
	r.a.Check(withCookie("POST", c.Value, "nope"), security.Operator)
	r.a.Logout(withCookie("POST", c.Value, s.CSRF))
	var out strings.Builder
	out.WriteString(r.logs.String())
	for _, ev := range r.events.all() {
		out.WriteString(ev.Actor + ev.Object + ev.Detail + ev.Remote + "\n")
	}
	for _, sec := range []string{c.Value, s.CSRF, "correct horse", "hunter2-secret"} {
		if strings.Contains(out.String(), sec) {
			t.Errorf("secret %.8s… in logs or events:\n%s", sec, out.String())
		}
	}
}
