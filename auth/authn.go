package auth

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-edge/weir/security"
)

// Identity is an authenticated caller.
type Identity struct {
	User string
	Role security.Role
	// Method is how they proved it: "cert", "token", "jwt" or "basic".
	Method string
	// credential names the credential for LoginOK dedupe (a token id, a
	// certificate's fingerprint, the user): never a secret.
	credential string
}

// Outcome is the answer of Check.
type Outcome int

// The outcomes; the HTTP layer maps them to 200, 401, 403 and 429.
const (
	OK Outcome = iota
	Unauthenticated
	Forbidden
	Throttled
)

// Decision is what Check decided.
type Decision struct {
	Outcome  Outcome
	Identity Identity
	// RetryAfter is set with Throttled.
	RetryAfter time.Duration
	// CSRF is set with Forbidden when the role would do but the request,
	// authenticated by a session cookie, lacks the session's CSRF token:
	// the caller should be told to reload the page, not that the role
	// is insufficient.
	CSRF bool
}

// Options are the runtime dependencies of an Authenticator.
type Options struct {
	// DataDir holds auth/tokens; ignored when Tokens is set.
	DataDir string
	Tokens  *TokenStore
	// Events receives LoginOK, LoginFailed, AccessDenied and
	// RequestRefused; nil: security.Discard.
	Events security.Recorder
	Log    *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Authenticator checks credentials against the configuration and the
// token store. Build with New; safe for concurrent use.
type Authenticator struct {
	cfg    Config
	users  map[string]User
	tokens *TokenStore
	jwt    *jwtVerifier
	events security.Recorder
	log    *slog.Logger
	now    func() time.Time

	failures *window // per remote host
	eventsBy *window // per host or caller, for refusals after authentication
	seen     once
	rate     limiter
	// argon bounds concurrent password checks: each takes ~19 MiB.
	argon chan struct{}
	// basicOK caches successful Basic logins for a while so a client
	// sending them on every request does not pay argon2 every time. The
	// key is SHA-256 over user, password and configured hash, kept only in
	// memory.
	basicMu sync.Mutex
	basicOK map[[32]byte]time.Time
	// sessions are the web UI's logins (session.go).
	sessions sessions
}

// maxObject caps the request named in an event.
const maxObject = 256

// basicCacheTTL is how long a verified Basic login is trusted from memory.
const basicCacheTTL = 5 * time.Minute

// New builds an Authenticator from a validated cfg. It reads the token file
// and the JWKS file, if any; OIDC discovery waits for the first JWT.
func New(cfg Config, opts Options) (*Authenticator, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Events == nil {
		opts.Events = security.Discard
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{cfg: cfg, users: map[string]User{}, tokens: opts.Tokens, events: opts.Events, log: opts.Log,
		now: opts.Now, failures: newWindow(), eventsBy: newWindow(), argon: make(chan struct{}, 2),
		basicOK: map[[32]byte]time.Time{}}
	for _, u := range cfg.Users {
		a.users[u.Name] = u
	}
	rl := cfg.RateLimit
	if rl == "" {
		rl = DefaultRateLimit
	}
	r, err := parseRate(rl)
	if err != nil {
		return nil, fmt.Errorf("auth.rate_limit: %w", err)
	}
	a.rate.r = r
	if a.tokens == nil {
		if a.tokens, err = OpenTokens(opts.DataDir, opts.Now); err != nil {
			return nil, err
		}
	}
	// weir token on the command line changes the file, not the API: its
	// acts are recorded when the gateway next reads the file.
	a.tokens.OnOutsideChange(func(created, revoked []TokenInfo) {
		ctx := context.Background()
		for _, t := range created {
			a.events.Record(ctx, security.Event{Time: a.now(), Kind: security.TokenCreated, Severity: security.SeverityNotice,
				Actor: "cli", Component: "auth", Object: "token " + t.ID, Outcome: "ok",
				Detail: "token for " + t.User + " (" + string(t.Role) + ") created outside the API (weir token)"})
		}
		for _, t := range revoked {
			a.events.Record(ctx, security.Event{Time: a.now(), Kind: security.TokenRevoked, Severity: security.SeverityNotice,
				Actor: "cli", Component: "auth", Object: "token " + t.ID, Outcome: "ok",
				Detail: "token for " + t.User + " revoked outside the API (weir token)"})
		}
	})
	if cfg.JWT != nil {
		if a.jwt, err = newJWTVerifier(*cfg.JWT, opts.Now); err != nil {
			return nil, fmt.Errorf("auth.jwt: %w", err)
		}
	}
	return a, nil
}

// Tokens is the token store, for the token endpoints.
func (a *Authenticator) Tokens() *TokenStore { return a.tokens }

// MetricsPublic reports whether /metrics answers without credentials.
func (a *Authenticator) MetricsPublic() bool { return a.cfg.metricsPublic() }

// TokenMaxLifetime bounds tokens created through the API.
func (a *Authenticator) TokenMaxLifetime() time.Duration { return a.cfg.tokenMaxLifetime() }

// errNoCredentials: the request carries none.
var errNoCredentials = errors.New("no credentials")

// Check authenticates r and decides whether it may do what need requires,
// recording what a SOC should see.
func (a *Authenticator) Check(r *http.Request, need security.Role) Decision {
	now := a.now()
	host := remoteHost(r.RemoteAddr)
	object := r.Method + " " + r.URL.Path
	if len(object) > maxObject { // the path is the caller's text
		object = strings.ToValidUTF8(object[:maxObject], "") + "…"
	}
	// A browser session (session.go) is a credential like a token: 256
	// random bits, accepted during a back-off. It is looked at only when
	// the request carries nothing else.
	if len(r.Header.Values("Authorization")) == 0 && !hasVerifiedCert(r) {
		if id, has, err := a.fromSession(r, now); has {
			return a.checkSession(r, id, err, object, need, now)
		}
	}
	if wait, blocked := a.failures.blocked(host, now); blocked {
		// Backing off is against guessing. A verified certificate, a valid
		// API token or a valid JWT cannot be guessed (a token is 256 random
		// bits), so refusing it would only let anybody sharing the address
		// (a local process, a NAT, a proxy) lock the operator out. Those
		// are checked and let through; everything else, passwords above
		// all, is refused unchecked and counted, not recorded one by one.
		id, ok := a.unguessable(r)
		if !ok {
			a.failures.suppress(host)
			return Decision{Outcome: Throttled, RetryAfter: wait}
		}
		return a.authorize(r, id, object, need, now)
	}
	id, claimed, err := a.authenticate(r, host)
	if err != nil {
		detail := "invalid credentials"
		if errors.Is(err, errNoCredentials) {
			// A request without credentials is not a guess: no back-off,
			// but a bounded number of events.
			if ok, sup := a.eventsBy.allowEvent("anon|"+host, now); ok {
				a.record(r, security.Event{Kind: security.LoginFailed, Severity: security.SeverityNotice,
					Object: object, Outcome: "failed", Detail: withSuppressed("no credentials", sup)})
			}
			return Decision{Outcome: Unauthenticated}
		}
		a.log.Debug("authentication failed", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
		sup, blocked := a.failures.fail(host, now)
		if claimed != "" {
			detail += " (" + claimed + ")"
		}
		if blocked {
			detail += fmt.Sprintf("; %d failures from this address within %s: refused for %s", failLimit, failWindow, backoff)
		}
		a.record(r, security.Event{Kind: security.LoginFailed, Severity: security.SeverityWarning,
			Object: object, Outcome: "failed", Detail: withSuppressed(detail, sup)})
		return Decision{Outcome: Unauthenticated}
	}
	if sup := a.failures.takeSuppressed(host); sup > 0 {
		a.record(r, security.Event{Kind: security.LoginFailed, Severity: security.SeverityWarning, Object: object,
			Outcome: "refused", Detail: withSuppressed("back-off ended", sup)})
	}
	return a.authorize(r, id, object, need, now)
}

// authorize is what follows a successful authentication: the LoginOK
// event, the per-caller rate limit and the role check.
func (a *Authenticator) authorize(r *http.Request, id Identity, object string, need security.Role, now time.Time) Decision {
	// A session's login was recorded when it was opened (Login).
	if id.Method != "session" && a.seen.first(id.Method+"|"+id.credential, now, LoginOKEvery) {
		a.record(r, security.Event{Kind: security.LoginOK, Severity: security.SeverityInfo, Actor: "api:" + id.User,
			Object: object, Outcome: "ok", Detail: "by " + id.Method + ", role " + string(id.Role)})
	}
	if !a.rate.take(id.User, now) {
		if ok, sup := a.eventsBy.allowEvent("rate|"+id.User, now); ok {
			a.record(r, security.Event{Kind: security.RequestRefused, Severity: security.SeverityWarning,
				Actor: "api:" + id.User, Object: object, Outcome: "refused",
				Detail: withSuppressed("per-caller rate limit "+a.rateString()+" reached", sup)})
		}
		return Decision{Outcome: Throttled, Identity: id, RetryAfter: time.Duration(float64(a.rate.r.per) / a.rate.r.n)}
	}
	if !id.Role.Includes(need) {
		if ok, sup := a.eventsBy.allowEvent("deny|"+id.User, now); ok {
			a.record(r, security.Event{Kind: security.AccessDenied, Severity: security.SeverityWarning,
				Actor: "api:" + id.User, Object: object, Outcome: "denied",
				Detail: withSuppressed("role "+string(id.Role)+" may not do this; it needs "+string(need), sup)})
		}
		return Decision{Outcome: Forbidden, Identity: id}
	}
	return Decision{Outcome: OK, Identity: id}
}

func (a *Authenticator) rateString() string {
	if a.cfg.RateLimit != "" {
		return a.cfg.RateLimit
	}
	return DefaultRateLimit
}

func withSuppressed(detail string, n int) string {
	if n == 0 {
		return detail
	}
	return detail + " (" + strconv.Itoa(n) + " similar events suppressed before this one)"
}

func (a *Authenticator) record(r *http.Request, ev security.Event) {
	ev.Time = a.now()
	ev.Remote = r.RemoteAddr
	ev.Component = "api"
	a.events.Record(r.Context(), ev)
}

// authenticate finds the identity r proves; claimed says which account a
// failed attempt named ("user alice", "token <id>"), for the event: never
// a secret.
func (a *Authenticator) authenticate(r *http.Request, host string) (Identity, string, error) {
	if id, ok := a.fromCert(r); ok {
		return id, "", nil
	}
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			return Identity{}, "", errors.New("client certificate is not mapped to a user")
		}
		return Identity{}, "", errNoCredentials
	}
	if len(h) > 1 {
		return Identity{}, "", errors.New("more than one Authorization header")
	}
	cred, err := ParseAuthorization(h[0])
	if err != nil {
		return Identity{}, "", err
	}
	switch cred.Scheme {
	case SchemeBearer:
		return a.bearer(r.Context(), cred.Token)
	case SchemeBasic:
		if r.TLS == nil && !isLoopback(host) {
			return Identity{}, "user " + cred.User + ", Basic without TLS", errors.New("HTTP Basic refused without TLS from a non-loopback address")
		}
		if !a.checkBasic(r.Context(), cred.User, cred.Password) {
			return Identity{}, "user " + cred.User, errors.New("wrong user or password")
		}
		u := a.users[cred.User]
		return Identity{User: u.Name, Role: u.Role, Method: "basic", credential: u.Name}, "", nil
	}
	return Identity{}, "", errors.New("unsupported authorization scheme")
}

// bearer checks an API token or a JWT.
func (a *Authenticator) bearer(ctx context.Context, token string) (Identity, string, error) {
	if strings.HasPrefix(token, TokenPrefix) {
		t, err := a.tokens.Lookup(token)
		if err != nil {
			if id, perr := ParseToken(token); perr == nil {
				return Identity{}, "token " + id, err
			}
			return Identity{}, "", err
		}
		return Identity{User: t.User, Role: t.Role, Method: "token", credential: t.ID}, "", nil
	}
	if a.jwt == nil || strings.Count(token, ".") != 2 {
		return Identity{}, "", errors.New("bearer credential is neither a Weir token nor an accepted JWT")
	}
	user, role, err := a.jwt.verify(ctx, token)
	if err != nil {
		return Identity{}, "", fmt.Errorf("jwt: %w", err)
	}
	sum := sha256.Sum256([]byte(token))
	return Identity{User: user, Role: role, Method: "jwt", credential: fmt.Sprintf("%x", sum[:8])}, "", nil
}

// unguessable authenticates r only by a credential that back-off cannot
// protect any better: a verified, mapped client certificate, a valid API
// token or a valid JWT. HTTP Basic is never looked at (no argon2 spent).
func (a *Authenticator) unguessable(r *http.Request) (Identity, bool) {
	if id, ok := a.fromCert(r); ok {
		return id, true
	}
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return Identity{}, false
	}
	cred, err := ParseAuthorization(h[0])
	if err != nil || cred.Scheme != SchemeBearer {
		return Identity{}, false
	}
	id, _, err := a.bearer(r.Context(), cred.Token)
	return id, err == nil
}

// checkBasic verifies a local user's password, at most two at a time,
// spending the same time on unknown users.
func (a *Authenticator) checkBasic(ctx context.Context, user, password string) bool {
	if len(a.users) == 0 {
		return false // no local users: nothing to hide, nothing to spend
	}
	u, known := a.users[user]
	hash := u.PasswordHash
	if !known || hash == "" {
		hash = dummyHash()
	}
	key := sha256.Sum256([]byte(user + "\x00" + password + "\x00" + hash))
	now := a.now()
	a.basicMu.Lock()
	exp, hit := a.basicOK[key]
	a.basicMu.Unlock()
	if hit && now.Before(exp) && known {
		return true
	}
	select {
	case a.argon <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	ok := CheckPassword(hash, password)
	<-a.argon
	if !ok || !known || u.PasswordHash == "" {
		return false
	}
	a.basicMu.Lock()
	if len(a.basicOK) >= 1000 {
		clear(a.basicOK)
	}
	a.basicOK[key] = now.Add(basicCacheTTL)
	a.basicMu.Unlock()
	return true
}

// fromCert maps the verified client certificate, if any, to a user. The
// TLS layer verified the chain against http.tls.client_ca
// (VerifyClientCertIfGiven); an unverified certificate is ignored.
func (a *Authenticator) fromCert(r *http.Request) (Identity, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return Identity{}, false
	}
	leaf := r.TLS.VerifiedChains[0][0]
	for _, m := range a.cfg.ClientCerts {
		if certMatches(leaf, m) {
			u, ok := a.users[m.User]
			if !ok {
				return Identity{}, false
			}
			sum := sha256.Sum256(leaf.Raw)
			return Identity{User: u.Name, Role: u.Role, Method: "cert", credential: fmt.Sprintf("%x", sum[:8])}, true
		}
	}
	return Identity{}, false
}

func certMatches(c *x509.Certificate, m ClientCert) bool {
	switch {
	case m.CN != "":
		return c.Subject.CommonName == m.CN
	case m.DNS != "":
		for _, d := range c.DNSNames {
			if strings.EqualFold(d, m.DNS) {
				return true
			}
		}
	case m.URI != "":
		for _, u := range c.URIs {
			if u.String() == m.URI {
				return true
			}
		}
	}
	return false
}

func hasVerifiedCert(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.VerifiedChains) > 0
}

// checkSession finishes Check for a request carrying a session cookie: a
// live session is authorized like any identity; a wrong CSRF token is
// refused (403) and an unknown or expired session is unauthenticated
// (401), each with a bounded event. Neither counts toward the back-off:
// a stale cookie is not a guess.
func (a *Authenticator) checkSession(r *http.Request, id Identity, err error, object string, need security.Role, now time.Time) Decision {
	switch {
	case err == nil:
		return a.authorize(r, id, object, need, now)
	case errors.Is(err, errCSRF):
		if ok, sup := a.eventsBy.allowEvent("csrf|"+id.User, now); ok {
			a.record(r, security.Event{Kind: security.AccessDenied, Severity: security.SeverityWarning,
				Actor: "api:" + id.User, Object: object, Outcome: "denied", Detail: withSuppressed("web session: "+err.Error(), sup)})
		}
		return Decision{Outcome: Forbidden, Identity: id, CSRF: true}
	}
	if ok, sup := a.eventsBy.allowEvent("anon|"+remoteHost(r.RemoteAddr), now); ok && !errors.Is(err, errSessionExpired) {
		a.record(r, security.Event{Kind: security.LoginFailed, Severity: security.SeverityNotice,
			Object: object, Outcome: "failed", Detail: withSuppressed("web session: "+err.Error(), sup)})
	}
	return Decision{Outcome: Unauthenticated}
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func isLoopback(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
