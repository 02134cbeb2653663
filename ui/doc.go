// Package ui is the operator web UI, served by the API server: pages
// rendered on the server with html/template, kept live with htmx and
// server-sent events, every asset embedded in the binary (third-party
// JavaScript is committed under static/vendor with its licence), so a
// gateway without internet serves it as it is.
//
// Authentication is the API's: RequireAuth and the routeRoles rows for
// /ui/ run before any handler here. A browser logs in through the form at
// /ui/login (a local user's password or an API token) and then holds a
// session cookie (package auth), which the API accepts on every route, so
// the pages' scripts can call /api/v1/* and open /api/v1/stream. Unsafe
// requests carry the session's CSRF token (js/weir.js adds it).
//
// Caveats, on purpose:
//   - No inline script or style anywhere: the Content-Security-Policy of
//     /ui/ (api.UICSP) forbids them. Pages hand data to scripts in data-*
//     attributes.
//   - A page hides the controls a role may not use, but the API is what
//     refuses them: the UI is a client of the API like any other.
//   - A level of the tag browser shows one page of rows (tagsPageSize) and
//     subscribes to those only, so 10,000 tags cost one page.
package ui
