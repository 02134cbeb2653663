package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/weir-edge/weir/security"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// events collects recorded security events.
type events struct {
	mu  sync.Mutex
	evs []security.Event
}

func (e *events) Record(_ context.Context, ev security.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) kinds() []security.Kind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []security.Kind
	for _, ev := range e.evs {
		out = append(out, ev.Kind)
	}
	return out
}

func (e *events) count(k security.Kind) int {
	n := 0
	for _, x := range e.kinds() {
		if x == k {
			n++
		}
	}
	return n
}

func (e *events) all() []security.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]security.Event(nil), e.evs...)
}

type rig struct {
	a      *Authenticator
	clock  *clock
	events *events
	logs   *bytes.Buffer
	tokens *TokenStore
	dir    string
}

// testHash is the argon2id hash of "correct horse", made once.
var testHash = sync.OnceValue(func() string {
	h, err := HashPassword("correct horse")
	if err != nil {
		panic(err)
	}
	return h
})

func newRig(t testing.TB, cfg Config) *rig {
	t.Helper()
	r := &rig{clock: newClock(), events: &events{}, logs: &bytes.Buffer{}, dir: t.TempDir()}
	var err error
	if r.tokens, err = OpenTokens(r.dir, r.clock.Now); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(&syncWriter{w: r.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.a, err = New(cfg, Options{Tokens: r.tokens, Events: r.events, Log: log, Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func request(remote, authz string) *http.Request {
	r := httptest.NewRequest("GET", "/api/v1/values", nil)
	r.RemoteAddr = remote
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	return r
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestCheck(t *testing.T) {
	cfg := Config{Users: []User{
		{Name: "alice", Role: security.Operator, PasswordHash: testHash()},
		{Name: "victor", Role: security.Viewer, PasswordHash: testHash()},
	}}
	r := newRig(t, cfg)
	opTok, _, err := r.tokens.Create("scada", security.Operator, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	viewTok, _, _ := r.tokens.Create("grafana", security.Viewer, time.Hour, "")
	for name, tc := range map[string]struct {
		remote, authz string
		need          security.Role
		want          Outcome
		user          string
		event         security.Kind
	}{
		"no credentials":         {"10.0.0.9:5000", "", security.Viewer, Unauthenticated, "", security.LoginFailed},
		"token ok":               {"10.0.0.9:5000", "Bearer " + opTok, security.Operator, OK, "scada", security.LoginOK},
		"token lower role":       {"10.0.0.9:5000", "Bearer " + viewTok, security.Operator, Forbidden, "grafana", security.AccessDenied},
		"token wrong secret":     {"10.0.0.9:5000", "Bearer " + flipLast(opTok), security.Viewer, Unauthenticated, "", security.LoginFailed},
		"unknown token":          {"10.0.0.9:5000", "Bearer weir_0123456789abcdef_" + strings.Repeat("a", 64), security.Viewer, Unauthenticated, "", security.LoginFailed},
		"garbage bearer":         {"10.0.0.9:5000", "Bearer nonsense", security.Viewer, Unauthenticated, "", security.LoginFailed},
		"basic loopback ok":      {"127.0.0.1:5000", basic("alice", "correct horse"), security.Operator, OK, "alice", security.LoginOK},
		"basic wrong password":   {"127.0.0.1:5000", basic("alice", "wrong"), security.Viewer, Unauthenticated, "", security.LoginFailed},
		"basic unknown user":     {"127.0.0.1:5000", basic("mallory", "correct horse"), security.Viewer, Unauthenticated, "", security.LoginFailed},
		"basic viewer writes":    {"[::1]:5000", basic("victor", "correct horse"), security.Operator, Forbidden, "victor", security.AccessDenied},
		"basic plaintext remote": {"10.0.0.7:5000", basic("alice", "correct horse"), security.Viewer, Unauthenticated, "", security.LoginFailed},
		"unsupported scheme":     {"10.0.0.9:5000", "Digest abc", security.Viewer, Unauthenticated, "", security.LoginFailed},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(r.events.all())
			d := r.a.Check(request(tc.remote, tc.authz), tc.need)
			if d.Outcome != tc.want || d.Identity.User != tc.user {
				t.Fatalf("got %v %q, want %v %q", d.Outcome, d.Identity.User, tc.want, tc.user)
			}
			evs := r.events.all()[before:]
			found := false
			for _, ev := range evs {
				if ev.Kind == tc.event {
					found = true
					if ev.Remote != tc.remote || ev.Component != "api" || ev.Object != "GET /api/v1/values" {
						t.Errorf("event %+v: want remote %s, component api, object GET /api/v1/values", ev, tc.remote)
					}
				}
			}
			if !found {
				t.Errorf("events %v: want one %s", evs, tc.event)
			}
		})
	}
}

func TestTokenExpiryAndRevocation(t *testing.T) {
	r := newRig(t, Config{})
	tok, info, err := r.tokens.Create("hist", security.Viewer, time.Hour, "historian")
	if err != nil {
		t.Fatal(err)
	}
	check := func() Outcome { return r.a.Check(request("10.1.1.1:1", "Bearer "+tok), security.Viewer).Outcome }
	if got := check(); got != OK {
		t.Fatalf("fresh token: %v", got)
	}
	r.clock.Add(59 * time.Minute)
	if got := check(); got != OK {
		t.Fatalf("before expiry: %v", got)
	}
	r.clock.Add(time.Minute)
	if got := check(); got != Unauthenticated {
		t.Fatalf("at expiry: %v, want Unauthenticated", got)
	}
	tok2, info2, _ := r.tokens.Create("hist", security.Viewer, time.Hour, "")
	if got := r.a.Check(request("10.1.1.2:1", "Bearer "+tok2), security.Viewer).Outcome; got != OK {
		t.Fatalf("second token: %v", got)
	}
	// Revoked by another process (weir token revoke) through its own store.
	other, err := OpenTokens(r.dir, r.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Revoke(info2.ID); err != nil {
		t.Fatal(err)
	}
	if got := r.a.Check(request("10.1.1.2:1", "Bearer "+tok2), security.Viewer).Outcome; got != Unauthenticated {
		t.Fatalf("revoked token: %v, want Unauthenticated", got)
	}
	states := map[string]string{}
	for _, ti := range r.tokens.List() {
		states[ti.ID] = ti.State(r.clock.Now())
	}
	if states[info.ID] != "expired" || states[info2.ID] != "revoked" {
		t.Errorf("states %v", states)
	}
}

func TestBackoff(t *testing.T) {
	r := newRig(t, Config{Users: []User{{Name: "alice", Role: security.Admin, PasswordHash: testHash()}}})
	tok, _, _ := r.tokens.Create("alice", security.Admin, time.Hour, "")
	bad := "Bearer weir_0123456789abcdef_" + strings.Repeat("b", 64)
	for i := range failLimit {
		if got := r.a.Check(request("10.2.2.2:1", bad), security.Viewer).Outcome; got != Unauthenticated {
			t.Fatalf("attempt %d: %v", i, got)
		}
	}
	// Backing off: guesses of any kind — wrong tokens, passwords (even the
	// right one: a password is guessable, so its check waits), nothing at
	// all — are refused unchecked and nothing more is recorded.
	n := len(r.events.all())
	refused := []string{bad, basic("alice", "correct horse"), basic("alice", "wrong"), "", "Bearer " + tok + "x", "Bearer a.b.c"}
	for i := range 100 {
		d := r.a.Check(request("10.2.2.2:2", refused[i%len(refused)]), security.Viewer)
		if d.Outcome != Throttled || d.RetryAfter <= 0 {
			t.Fatalf("during back-off, %d: %+v", i%len(refused), d)
		}
	}
	if got := len(r.events.all()); got != n {
		t.Fatalf("%d events during back-off, want none", got-n)
	}
	// Another address is not affected.
	if got := r.a.Check(request("10.2.2.3:1", "Bearer "+tok), security.Viewer).Outcome; got != OK {
		t.Fatalf("other address: %v", got)
	}
	r.clock.Add(backoff)
	if got := r.a.Check(request("10.2.2.2:3", "Bearer "+tok), security.Viewer).Outcome; got != OK {
		t.Fatalf("after back-off: %v", got)
	}
	var summary bool
	for _, ev := range r.events.all()[n:] {
		if ev.Kind == security.LoginFailed && strings.Contains(ev.Detail, "100 similar events suppressed") {
			summary = true
		}
	}
	if !summary {
		t.Errorf("no event reports the 100 suppressed attempts: %+v", r.events.all()[n:])
	}
	if got := r.events.count(security.LoginFailed); got != failLimit+1 {
		t.Errorf("%d LoginFailed events, want %d", got, failLimit+1)
	}
}

// TestBackoffSparesValidToken: five bad tokens from an address must not
// lock out the holder of a valid one there (a local process, a NAT or a
// proxy shares the address); the back-off itself goes on.
func TestBackoffSparesValidToken(t *testing.T) {
	r := newRig(t, Config{Users: []User{{Name: "alice", Role: security.Admin, PasswordHash: testHash()}}})
	tok, _, _ := r.tokens.Create("alice", security.Admin, time.Hour, "")
	viewer, _, _ := r.tokens.Create("vic", security.Viewer, time.Hour, "")
	bad := "Bearer weir_0123456789abcdef_" + strings.Repeat("b", 64)
	for range failLimit {
		r.a.Check(request("127.0.0.1:1", bad), security.Viewer)
	}
	for i, c := range []struct {
		authz string
		need  security.Role
		want  Outcome
	}{
		{"Bearer " + tok, security.Admin, OK},
		{basic("alice", "correct horse"), security.Viewer, Throttled},
		{bad, security.Viewer, Throttled},
		{"Bearer " + viewer, security.Operator, Forbidden}, // authenticated, so roles still apply
		{"Bearer " + tok, security.Viewer, OK},
	} {
		if got := r.a.Check(request("127.0.0.1:2", c.authz), c.need).Outcome; got != c.want {
			t.Errorf("case %d during back-off: %v, want %v", i, got, c.want)
		}
	}
	// The valid token neither ended the back-off nor took its count.
	if _, blocked := r.a.failures.blocked("127.0.0.1", r.clock.Now()); !blocked {
		t.Fatal("a valid token ended the back-off")
	}
	if got := r.a.failures.takeSuppressed("127.0.0.1"); got != 2 {
		t.Errorf("%d attempts counted as suppressed, want 2", got)
	}
}

func TestLoginOKOncePerPeriod(t *testing.T) {
	r := newRig(t, Config{})
	tok, _, _ := r.tokens.Create("hist", security.Viewer, 24*time.Hour, "")
	for range 50 {
		r.a.Check(request("10.3.3.3:1", "Bearer "+tok), security.Viewer)
	}
	if got := r.events.count(security.LoginOK); got != 1 {
		t.Fatalf("%d LoginOK events for 50 requests, want 1", got)
	}
	r.clock.Add(LoginOKEvery)
	r.a.Check(request("10.3.3.3:1", "Bearer "+tok), security.Viewer)
	if got := r.events.count(security.LoginOK); got != 2 {
		t.Fatalf("%d LoginOK events after the period, want 2", got)
	}
}

func TestPerCallerRateLimit(t *testing.T) {
	r := newRig(t, Config{RateLimit: "5/min"})
	noisy, _, _ := r.tokens.Create("noisy", security.Operator, time.Hour, "")
	quiet, _, _ := r.tokens.Create("quiet", security.Operator, time.Hour, "")
	for i := range 5 {
		if got := r.a.Check(request("10.4.4.4:1", "Bearer "+noisy), security.Operator).Outcome; got != OK {
			t.Fatalf("request %d: %v", i, got)
		}
	}
	for range 20 {
		if d := r.a.Check(request("10.4.4.4:1", "Bearer "+noisy), security.Operator); d.Outcome != Throttled {
			t.Fatalf("over the limit: %v", d.Outcome)
		}
	}
	// The noisy caller does not use up the quiet one's budget.
	if got := r.a.Check(request("10.4.4.5:1", "Bearer "+quiet), security.Operator).Outcome; got != OK {
		t.Fatalf("quiet caller: %v", got)
	}
	if got := r.events.count(security.RequestRefused); got != eventLimit {
		t.Errorf("%d RequestRefused events for 20 refusals, want %d (bounded)", got, eventLimit)
	}
	r.clock.Add(12 * time.Second) // one token back at 5/min
	if got := r.a.Check(request("10.4.4.4:1", "Bearer "+noisy), security.Operator).Outcome; got != OK {
		t.Fatalf("after refill: %v", got)
	}
}

// TestNoSecretsAnywhere drives every path with known secrets and greps the
// log, the events and the answers for them.
func TestNoSecretsAnywhere(t *testing.T) {
	r := newRig(t, Config{Users: []User{{Name: "alice", Role: security.Operator, PasswordHash: testHash()}}})
	tok, info, _ := r.tokens.Create("alice", security.Operator, time.Hour, "")
	wrongTok := tok[:len(tok)-4] + "ffff"
	for _, authz := range []string{
		"Bearer " + tok, "Bearer " + wrongTok, basic("alice", "correct horse"), basic("alice", "hunter2-secret"),
		"Bearer " + tok + "x", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")),
	} {
		r.a.Check(request("127.0.0.1:1", authz), security.Admin)
		r.clock.Add(LoginOKEvery)
	}
	secrets := []string{tok, tok[len(tok)-64:], wrongTok[len(wrongTok)-64:], "correct horse", "hunter2-secret", info.Hash, testHash(),
		strings.Split(testHash(), "$")[5]}
	var out strings.Builder
	out.WriteString(r.logs.String())
	for _, ev := range r.events.all() {
		out.WriteString(ev.Actor + ev.Object + ev.Detail + ev.Remote + "\n")
	}
	for _, s := range secrets {
		if strings.Contains(out.String(), s) {
			t.Errorf("secret %.12s… found in logs or events:\n%s", s, out.String())
		}
	}
	if len(r.events.all()) == 0 || r.logs.Len() == 0 {
		t.Fatal("nothing recorded or logged: the test proves nothing")
	}
}

func TestTokenFile(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	s, err := OpenTokens(dir, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	tok, info, err := s.Create("ops", security.Admin, 720*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != tokenLen {
		t.Fatalf("token %q: want %s prefix and %d characters", tok[:8], TokenPrefix, tokenLen)
	}
	fi, err := statPerm(TokensPath(dir))
	if err != nil || fi != 0o600 {
		t.Fatalf("token file mode %o, %v: want 0600", fi, err)
	}
	if d, _ := statPerm(filepath.Dir(TokensPath(dir))); d != 0o700 {
		t.Errorf("auth dir mode %o, want 0700", d)
	}
	data, _ := readFile(TokensPath(dir))
	if strings.Contains(string(data), tok) || strings.Contains(string(data), tok[len(tok)-64:]) {
		t.Fatal("the token file holds the token itself")
	}
	if !strings.Contains(string(data), info.Hash) {
		t.Fatal("the token file does not hold the token's hash")
	}
	for name, tc := range map[string]struct {
		user     string
		role     security.Role
		lifetime time.Duration
	}{
		"no expiry":  {"ops", security.Viewer, 0},
		"too long":   {"ops", security.Viewer, MaxTokenLifetime + time.Hour},
		"bad role":   {"ops", "root", time.Hour},
		"bad user":   {"a b", security.Viewer, time.Hour},
		"empty user": {"", security.Viewer, time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := s.Create(tc.user, tc.role, tc.lifetime, ""); err == nil {
				t.Fatal("created")
			}
		})
	}
	_, noted, err := s.Create("ops", security.Viewer, time.Hour, "line1\nline2\t"+strings.Repeat("é", 150))
	if err != nil || strings.ContainsAny(noted.Note, "\n\t") || len(noted.Note) > 200 || !utf8.ValidString(noted.Note) {
		t.Errorf("note %q (%v): control characters or over 200 bytes", noted.Note, err)
	}
	if _, err := s.Revoke("0000000000000000"); !errors.Is(err, ErrNoToken) {
		t.Errorf("revoke unknown: %v", err)
	}
}

// flipLast changes a token's last hex digit.
func flipLast(tok string) string {
	last := byte('0')
	if tok[len(tok)-1] == '0' {
		last = '1'
	}
	return tok[:len(tok)-1] + string(last)
}

// A failed login says which account was tried, never with what, and names
// no actor: nobody was authenticated.
func TestFailedLoginEventNamesAccount(t *testing.T) {
	r := newRig(t, Config{Users: []User{{Name: "alice", Role: security.Operator, PasswordHash: testHash()}}})
	r.a.Check(request("127.0.0.1:9", basic("alice", "guess-1")), security.Viewer)
	r.a.Check(request("127.0.0.1:9", "Bearer weir_0123456789abcdef_"+strings.Repeat("d", 64)), security.Viewer)
	evs := r.events.all()
	if len(evs) != 2 || evs[0].Actor != "" || !strings.Contains(evs[0].Detail, "user alice") ||
		!strings.Contains(evs[1].Detail, "token 0123456789abcdef") || strings.Contains(evs[0].Detail, "guess-1") {
		t.Fatalf("events %+v", evs)
	}
}

// Tokens created and revoked with weir token (another process, its own
// store) are recorded as events once the gateway reads the file; the
// gateway's own acts (the API records those) are not recorded twice.
func TestOutsideTokenChangesRecorded(t *testing.T) {
	r := newRig(t, Config{})
	own, _, err := r.tokens.Create("hmi", security.Operator, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := OpenTokens(r.dir, r.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	tok, info, err := other.Create("historian", security.Viewer, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.a.Check(request("127.0.0.1:1", "Bearer "+tok), security.Viewer).Outcome; got != OK {
		t.Fatalf("token made by another process: %v", got)
	}
	if _, err := other.Revoke(info.ID); err != nil {
		t.Fatal(err)
	}
	if got := r.a.Check(request("127.0.0.1:1", "Bearer "+own), security.Viewer).Outcome; got != OK {
		t.Fatalf("own token: %v", got)
	}
	var kinds []security.Kind
	for _, ev := range r.events.all() {
		if ev.Kind == security.TokenCreated || ev.Kind == security.TokenRevoked {
			if ev.Actor != "cli" || ev.Object != "token "+info.ID {
				t.Errorf("event %+v: want actor cli, object token %s", ev, info.ID)
			}
			if strings.Contains(ev.Detail, tok) || strings.Contains(ev.Detail, info.Hash) {
				t.Errorf("event detail holds the token or its hash: %q", ev.Detail)
			}
			kinds = append(kinds, ev.Kind)
		}
	}
	if want := []security.Kind{security.TokenCreated, security.TokenRevoked}; !slices.Equal(kinds, want) {
		t.Fatalf("token events %v, want %v", kinds, want)
	}
}
