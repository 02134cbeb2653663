package api

import (
	"context"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/security"
)

// Authenticator is what the API asks about every request but /healthz and
// /readyz; *auth.Authenticator implements it.
type Authenticator interface {
	Check(r *http.Request, need security.Role) auth.Decision
	MetricsPublic() bool
}

var _ Authenticator = (*auth.Authenticator)(nil)

// CSRFMessage answers (403) a request authenticated by a session cookie
// without the session's CSRF token: a page open across a restart or a
// new login holds an old token, and a reload fetches the current one.
const CSRFMessage = "missing or wrong CSRF token (X-CSRF-Token); reload the page"

// Rechecker is the optional capability of an Authenticator to say, later
// and cheaply, whether the credentials of an earlier OK decision still
// hold (see auth.Authenticator.Recheck). Long-lived responses (the live
// stream) use it through the request context, so logout and revocation
// end them.
type Rechecker interface {
	Recheck(r *http.Request, id auth.Identity, need security.Role) bool
}

var _ Rechecker = (*auth.Authenticator)(nil)

// routeRole is one row of the access table.
type routeRole struct {
	method string // "" any method
	path   string // exact, or a prefix when it ends in "/"
	role   security.Role
	public bool
	exact  bool // path "/" only, not a prefix
}

// routeRoles is the access table, first match wins. Reading is viewer,
// commands to the plant and alarm actions operator, the configuration
// engineer, tokens admin; a route not listed needs viewer for GET/HEAD and
// admin for anything else, so a new endpoint is closed until it is given
// a row.
var routeRoles = []routeRole{
	{method: "GET", path: "/healthz", public: true},
	{method: "GET", path: "/readyz", public: true},
	// The web UI (package ui): the login form, its assets and the
	// redirect of / are public; every other page needs a session (or any
	// credential) of a viewer, and what it shows or offers follows the
	// role. Unsafe requests by cookie also need the CSRF token (auth).
	{method: "GET", path: "/", public: true, exact: true},
	{method: "GET", path: "/ui/login", public: true},
	// Browsers ask for it on their own, without credentials: public, so
	// it is no authentication failure in the security events.
	{method: "GET", path: "/favicon.ico", public: true, exact: true},
	{method: "POST", path: "/ui/login", public: true},
	{method: "GET", path: "/ui/static/", public: true},
	{path: "/ui/", role: security.Viewer},
	{path: "/ui", role: security.Viewer},
	{path: "/api/v1/tokens", role: security.Admin},
	{path: "/api/v1/tokens/", role: security.Admin},
	{method: "POST", path: "/api/v1/write", role: security.Operator},
	{method: "GET", path: "/api/v1/write/policy", role: security.Operator},
	{method: "POST", path: "/api/v1/alarms/", role: security.Operator},
	// The configuration holds the plant's addresses and the secrets'
	// references: engineers read and change it.
	{path: "/api/v1/config", role: security.Engineer},
	{path: "/api/v1/config/", role: security.Engineer},
	{method: "GET", path: "/metrics", role: security.Viewer},
	{method: "GET", path: "/status", role: security.Viewer},
	{method: "GET", path: OpenAPIPath, role: security.Viewer},
	{method: "GET", path: "/api/v1/stream", role: security.Viewer},
	{method: "GET", path: "/api/v1/tags", role: security.Viewer},
	// The data-flow map shows what leaves the site, no values: as /status.
	{method: "GET", path: "/api/v1/flows", role: security.Viewer},
	{method: "GET", path: "/api/v1/", role: security.Viewer},
}

// RequiredRole says what a request needs: public (no credentials), or a
// role. metricsPublic opens /metrics (auth.metrics: public).
func RequiredRole(method, p string, metricsPublic bool) (role security.Role, public bool) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if p == "" {
		p = "/"
	}
	p = path.Clean(p)
	if metricsPublic && method == http.MethodGet && p == "/metrics" {
		return "", true
	}
	for _, rr := range routeRoles {
		if rr.method != "" && rr.method != method {
			continue
		}
		if p == rr.path || (!rr.exact && rr.path[len(rr.path)-1] == '/' && len(p) > len(rr.path) && p[:len(rr.path)] == rr.path) {
			return rr.role, rr.public
		}
	}
	if method == http.MethodGet {
		return security.Viewer, false
	}
	return security.Admin, false
}

// RequireAuth answers 401 (with WWW-Authenticate), 403 or 429 unless a
// authenticates r with the role its route needs; the identity travels in
// the request's context (UserFrom, RoleFrom). Messages are generic: they
// never say whether a user or token exists.
func RequireAuth(a Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need, public := RequiredRole(r.Method, r.URL.Path, a.MetricsPublic())
		if public {
			next.ServeHTTP(w, r)
			return
		}
		d := a.Check(r, need)
		switch d.Outcome {
		case auth.OK:
			ctx := WithIdentity(r.Context(), d.Identity.User, d.Identity.Role)
			if rc, ok := a.(Rechecker); ok {
				id := d.Identity
				ctx = withRecheck(ctx, func() bool { return rc.Recheck(r, id, need) })
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		case auth.Forbidden:
			if d.CSRF {
				writeError(w, http.StatusForbidden, CSRFMessage, nil)
				return
			}
			writeError(w, http.StatusForbidden, "your role does not allow this", nil)
		case auth.Throttled:
			w.Header().Set("Retry-After", strconv.Itoa(int(max(time.Second, d.RetryAfter.Round(time.Second))/time.Second)))
			writeError(w, http.StatusTooManyRequests, "too many requests; try again later", nil)
		default:
			// A browser on a UI page goes to the login form, not to a
			// JSON 401; htmx follows HX-Redirect.
			if uiPath(r.URL.Path) && r.Header.Get("HX-Request") != "" {
				w.Header().Set("HX-Redirect", "/ui/login")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if uiPath(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="weir", Basic realm="weir", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "authentication required", nil)
		}
	})
}

// uiPath reports a path of the web UI (package ui).
func uiPath(p string) bool { return p == "/ui" || strings.HasPrefix(p, "/ui/") }

// roleKey is the context key of the authenticated caller's role.
type roleKey struct{}

// WithIdentity returns ctx carrying the authenticated user and role.
func WithIdentity(ctx context.Context, user string, role security.Role) context.Context {
	return context.WithValue(WithUser(ctx, user), roleKey{}, role)
}

// RoleFrom returns the role WithIdentity stored, if any.
func RoleFrom(ctx context.Context) (security.Role, bool) {
	r, ok := ctx.Value(roleKey{}).(security.Role)
	return r, ok && r.Valid()
}
