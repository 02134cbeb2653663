// Package api serves Weir's HTTP endpoints. In this version they are the
// observability endpoints:
//
//	GET /metrics  Prometheus exposition: every component's state, counters,
//	              gauges and latency histograms, each with a HELP line
//	GET /healthz  200 while the process answers (liveness)
//	GET /readyz   200 while data can flow: the engine runs, at least one
//	              source and one sink are up; else 503 naming what is down
//	GET /status   JSON state, up, last error (and when) and counters of
//	              every component
//
// docs/observability.md says what each answer means for an operator.
//
// Every route but /healthz and /readyz wants credentials when
// Options.Auth is set (the gateway always sets it): RequireAuth asks the
// authenticator (package auth) with the role the route needs (routeRoles in
// auth.go) and hands the handlers the caller in the request context
// (UserFrom, RoleFrom). Tokens serves /api/v1/tokens for admins.
//
// The listener is hardened in front of every handler, authentication
// included (README.md): HTTPS with a certificate reloaded on change or a
// self-signed one (tls.go, selfsigned.go), Host and Origin checked against
// DNS rebinding, security headers and a body limit (guard.go), per-client
// and total connection caps, and security events for refusals, rejected
// certificates and new peers (limits.go).
package api
