package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/weir-edge/weir/security"
)

// Browser sessions. A browser cannot send an Authorization header on an
// EventSource or a plain link, so the web UI logs in once (a local user's
// password, or an API token pasted) and then carries a session cookie,
// which Check accepts on every route like any other credential.
//
// The session id is 256 random bits; only its SHA-256 is kept, so a memory
// dump does not hand out live sessions. A session ends after SessionIdle
// without a request, SessionMaxAge after login, at logout, or when the
// table is full and it is the least recently used. Requests other than
// GET and HEAD authenticated by the cookie must carry the session's CSRF
// token in X-CSRF-Token (the cookie is also SameSite=Strict, and the API's
// guard refuses foreign Origins: three locks on one door, because a write
// reaches the plant).
const (
	// SessionCookie is the name of the session cookie.
	SessionCookie = "weir_session"
	// CSRFHeader carries the session's CSRF token on unsafe requests.
	CSRFHeader = "X-CSRF-Token"
	// SessionIdle ends a session that has not been used for this long.
	SessionIdle = 30 * time.Minute
	// SessionMaxAge ends every session this long after login.
	SessionMaxAge = 12 * time.Hour
	// maxSessions bounds the table; the least recently used goes first.
	maxSessions = 1000
)

// session is one browser login; the table is keyed by the SHA-256 of its id.
type session struct {
	id       Identity
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// SessionInfo is what the UI needs of a session: who, which role, and the
// CSRF token its pages embed.
type SessionInfo struct {
	User    string
	Role    security.Role
	CSRF    string
	Method  string // how the login was proved: "basic" (password) or "token"
	Expires time.Time
}

// sessions is the server-side table.
type sessions struct {
	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKey(cookie string) [32]byte { return sha256.Sum256([]byte(cookie)) }

// add stores a new session and returns its cookie value.
func (s *sessions) add(id Identity, now time.Time) (string, *session) {
	cookie := newSecret()
	ss := &session{id: id, csrf: newSecret(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[[32]byte]*session{}
	}
	for k, v := range s.m { // expired ones first
		if expired(v, now) {
			delete(s.m, k)
		}
	}
	for len(s.m) >= maxSessions {
		var oldest [32]byte
		var at time.Time
		for k, v := range s.m {
			if at.IsZero() || v.lastSeen.Before(at) {
				oldest, at = k, v.lastSeen
			}
		}
		delete(s.m, oldest)
	}
	s.m[sessionKey(cookie)] = ss
	return cookie, ss
}

func expired(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) >= SessionIdle || now.Sub(s.created) >= SessionMaxAge
}

// lookup finds the live session of cookie and touches it; found reports
// a session that existed but has expired (then removed), for the event.
func (s *sessions) lookup(cookie string, now time.Time, touch bool) (ss session, ok, wasExpired bool) {
	k := sessionKey(cookie)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, found := s.m[k]
	if !found {
		return session{}, false, false
	}
	if expired(p, now) {
		delete(s.m, k)
		return *p, false, true
	}
	if touch {
		p.lastSeen = now
	}
	return *p, true, false
}

func (s *sessions) remove(cookie string) (session, bool) {
	k := sessionKey(cookie)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[k]
	if !ok {
		return session{}, false
	}
	delete(s.m, k)
	return *p, true
}

// sessionCookie returns the session cookie of r: exactly one, well formed.
func sessionCookie(r *http.Request) (string, bool) {
	cs := r.CookiesNamed(SessionCookie)
	if len(cs) != 1 || len(cs[0].Value) != 43 {
		return "", false
	}
	return cs[0].Value, true
}

// Login checks the credentials of the UI's login form, a local user's
// password or an API token, exactly as Check checks them in a header
// (same back-off per address, same events), and on success opens a
// session and returns its cookie for the response. Login as a viewer is
// the least a session needs; the role then limits what it may do.
func (a *Authenticator) Login(r *http.Request, user, password, token string) (*http.Cookie, Decision) {
	r2 := r.Clone(r.Context())
	r2.Header.Del("Cookie")
	r2.Header.Del("Authorization")
	switch {
	case token != "":
		r2.Header.Set("Authorization", SchemeBearer+" "+token)
	case user != "" && password != "":
		r2.SetBasicAuth(user, password)
	}
	d := a.Check(r2, security.Viewer)
	if d.Outcome != OK {
		return nil, d
	}
	now := a.now()
	cookie, _ := a.sessions.add(d.Identity, now)
	a.record(r, security.Event{Kind: security.LoginOK, Severity: security.SeverityInfo, Actor: "api:" + d.Identity.User,
		Object: "session", Outcome: "ok", Detail: "web session opened by " + d.Identity.Method + ", role " + string(d.Identity.Role)})
	return newSessionCookie(r, cookie, now.Add(SessionMaxAge)), d
}

// Logout ends the session of r, if any, records it, and returns the
// cookie that clears it in the browser.
func (a *Authenticator) Logout(r *http.Request) *http.Cookie {
	if c, ok := sessionCookie(r); ok {
		if s, ok := a.sessions.remove(c); ok {
			a.record(r, security.Event{Kind: security.Logout, Severity: security.SeverityInfo, Actor: "api:" + s.id.User,
				Object: "session", Outcome: "ok", Detail: "web session closed by the user"})
		}
	}
	return &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode}
}

// Session returns the live session of r, without touching it (Check
// does), for the UI's pages: user, role and CSRF token.
func (a *Authenticator) Session(r *http.Request) (SessionInfo, bool) {
	c, ok := sessionCookie(r)
	if !ok {
		return SessionInfo{}, false
	}
	s, ok, _ := a.sessions.lookup(c, a.now(), false)
	if !ok {
		return SessionInfo{}, false
	}
	exp := s.lastSeen.Add(SessionIdle)
	if abs := s.created.Add(SessionMaxAge); abs.Before(exp) {
		exp = abs
	}
	return SessionInfo{User: s.id.User, Role: s.id.Role, CSRF: s.csrf, Method: s.id.Method, Expires: exp}, true
}

func newSessionCookie(r *http.Request, value string, _ time.Time) *http.Cookie {
	// No Expires: the cookie ends with the browser, the session on the
	// server at the latest SessionMaxAge after login.
	return &http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode}
}

// errSessionExpired and errCSRF steer fromSession's callers.
type sessionError string

func (e sessionError) Error() string { return string(e) }

const (
	errNoSession      = sessionError("unknown session")
	errSessionExpired = sessionError("session expired")
	errCSRF           = sessionError("CSRF token missing or wrong")
)

// fromSession authenticates r by its session cookie. ok is false when r
// carries none. A request other than GET or HEAD must carry the
// session's CSRF token (errCSRF).
func (a *Authenticator) fromSession(r *http.Request, now time.Time) (id Identity, ok bool, err error) {
	c, has := sessionCookie(r)
	if !has {
		return Identity{}, false, nil
	}
	s, live, wasExpired := a.sessions.lookup(c, now, true)
	if !live {
		if wasExpired {
			a.record(r, security.Event{Kind: security.Logout, Severity: security.SeverityInfo, Actor: "api:" + s.id.User,
				Object: "session", Outcome: "expired", Detail: "web session expired"})
			return Identity{}, true, errSessionExpired
		}
		return Identity{}, true, errNoSession
	}
	if s.id.Method == "token" && !a.tokens.Active(s.id.credential) {
		// Revoking a token ends the sessions opened with it.
		a.sessions.remove(c)
		a.record(r, security.Event{Kind: security.Logout, Severity: security.SeverityNotice, Actor: "api:" + s.id.User,
			Object: "session", Outcome: "ended", Detail: "web session ended: its token was revoked or expired"})
		return Identity{}, true, errSessionExpired
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(CSRFHeader)
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
			return s.id, true, errCSRF
		}
	}
	id = s.id
	id.Method = "session"
	return id, true, nil
}

// Recheck reports whether the credentials that authenticated r as id (an
// OK Decision of Check) still grant need. A long-lived response (the
// live stream) calls it every few seconds, so that logout and token
// revocation end it: it is cheap — a session-table lookup or the token
// file's stamp, never a password hash — and records no event. A session
// opened with a token ends with the token, as in Check. Credentials that
// cannot change while the Authenticator lives (a certificate, a
// password of the configuration, a JWT until the stream's max age) stay
// good.
func (a *Authenticator) Recheck(r *http.Request, id Identity, need security.Role) bool {
	if !id.Role.Includes(need) {
		return false
	}
	switch id.Method {
	case "session":
		// As Check does, with its events (an expired session, or one whose
		// token was revoked, is removed here, so the next request could
		// not say why). r is the stream's GET: no CSRF token is needed.
		_, has, err := a.fromSession(r, a.now())
		return has && err == nil
	case "token":
		return a.tokens.Active(id.credential)
	}
	return true
}
