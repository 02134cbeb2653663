// Package auth decides who is calling the HTTP API and what they may do.
//
// A caller proves who they are in one of five ways, tried in this order:
//
//   - a client certificate the TLS layer has already verified against
//     http.tls.client_ca, mapped to a local user by its subject CN, a DNS
//     SAN or a URI SAN (client_certs);
//   - an API token, "Authorization: Bearer weir_…": random, shown once,
//     stored only as its SHA-256 in DATA_DIR/auth/tokens, expiring and
//     revocable (weir token create|list|revoke, or POST/GET/DELETE
//     /api/v1/tokens as an admin);
//   - a JWT, "Authorization: Bearer eyJ…", verified with go-oidc against a
//     JWKS file or an OIDC issuer; the audience is required and a claim
//     names the role;
//   - HTTP Basic for a local user whose password hash (argon2id, or bcrypt)
//     is in the configuration; only over TLS or from loopback;
//   - a web session cookie (session.go), opened by the UI's login form with
//     a password or a token, when the request has no Authorization header;
//     unsafe methods also need the session's CSRF token.
//
// Every identity has one security.Role. The caller of Check says which role
// a request needs; the answer is OK, Unauthenticated (401), Forbidden (403)
// or Throttled (429).
//
// Caveats, on purpose:
//   - Messages never say whether a user or token exists: every failed
//     credential is "invalid credentials".
//   - Failed logins back off per remote host (5 in a minute, then 429 for a
//     minute), so a brute force neither works nor floods the audit trail;
//     what the back-off suppressed is reported in one event when it ends.
//     Passwords are not even checked then; a verified certificate, a valid
//     token or a valid JWT still gets in (they cannot be guessed, and a
//     neighbour on the address must not lock their holder out).
//   - Successful logins are reported once per credential per LoginOKEvery,
//     not on every request.
//   - Nothing here logs, returns or records a password, token, or either's
//     hash.
package auth
