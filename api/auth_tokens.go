package api

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/security"
)

// Tokens serves the admin's token endpoints (RequireAuth gives them the
// admin role); mount with Options.Extra:
//
//	POST   /api/v1/tokens       {"user":…, "role":…, "expires":"720h", "note":…} → 201 with the token, shown once
//	GET    /api/v1/tokens       every token: id, user, role, created, expires, revoked, state (never a hash)
//	DELETE /api/v1/tokens/{id}  revoke
type Tokens struct {
	Store *auth.TokenStore
	// MaxLifetime bounds "expires"; default auth.DefaultTokenMaxLifetime.
	MaxLifetime time.Duration
	// Events receives TokenCreated and TokenRevoked; nil: discard.
	Events security.Recorder
	Now    func() time.Time
	Log    *slog.Logger
}

// Mount registers the endpoints; nothing when Store is nil.
func (t *Tokens) Mount(mux *http.ServeMux) {
	if t.Store == nil {
		return
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	if t.Events == nil {
		t.Events = security.Discard
	}
	if t.Log == nil {
		t.Log = slog.New(slog.DiscardHandler)
	}
	if t.MaxLifetime == 0 {
		t.MaxLifetime = auth.DefaultTokenMaxLifetime
	}
	mux.HandleFunc("POST /api/v1/tokens", t.create)
	mux.HandleFunc("GET /api/v1/tokens", t.list)
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", t.revoke)
}

type tokenRequest struct {
	User    string `json:"user"`
	Role    string `json:"role"`
	Expires string `json:"expires"`
	Note    string `json:"note"`
}

func (t *Tokens) create(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !decodeJSONBody(w, r, 4<<10, false, "{user, role, expires, note}", &req) {
		return
	}
	role, err := security.ParseRole(req.Role)
	if err != nil {
		writeError(w, http.StatusBadRequest, "role: "+err.Error(), nil)
		return
	}
	if mine, ok := RoleFrom(r.Context()); ok && !mine.Includes(role) {
		writeError(w, http.StatusForbidden, "a token cannot carry a higher role than yours", nil)
		return
	}
	d, err := time.ParseDuration(req.Expires)
	if err != nil || d < time.Minute || d > t.MaxLifetime {
		writeError(w, http.StatusBadRequest, "expires is required: a duration from 1m to "+t.MaxLifetime.String(), nil)
		return
	}
	tok, info, err := t.Store.Create(req.User, role, d, req.Note)
	switch {
	case errors.Is(err, auth.ErrTooMany):
		writeError(w, http.StatusConflict, err.Error(), nil)
		return
	case err != nil && auth.ValidUser(req.User) != nil:
		writeError(w, http.StatusBadRequest, "user: "+err.Error(), nil)
		return
	case err != nil:
		t.Log.Error("token endpoint", "err", err)
		writeError(w, http.StatusInternalServerError, "token store unavailable", nil)
		return
	}
	t.Events.Record(r.Context(), security.Event{Time: t.Now(), Kind: security.TokenCreated, Severity: security.SeverityNotice,
		Actor: caller(r), Remote: r.RemoteAddr, Component: "api", Object: "token " + info.ID, Outcome: "ok",
		Detail: "for " + info.User + ", role " + string(info.Role) + ", expires " + info.Expires.Format(time.RFC3339)})
	writeJSON(w, http.StatusCreated, struct {
		Token string `json:"token"`
		auth.TokenView
	}{tok, info.View(t.Now())})
}

func (t *Tokens) list(w http.ResponseWriter, _ *http.Request) {
	now := t.Now()
	out := []auth.TokenView{}
	for _, info := range t.Store.List() {
		out = append(out, info.View(now))
	}
	writeJSON(w, http.StatusOK, struct {
		Tokens []auth.TokenView `json:"tokens"`
	}{out})
}

func (t *Tokens) revoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !auth.ValidTokenID(id) {
		writeError(w, http.StatusNotFound, "no such token", nil)
		return
	}
	info, err := t.Store.Revoke(id)
	switch {
	case errors.Is(err, auth.ErrNoToken):
		writeError(w, http.StatusNotFound, "no such token", nil)
		return
	case err != nil:
		t.Log.Error("token endpoint", "err", err)
		writeError(w, http.StatusInternalServerError, "token store unavailable", nil)
		return
	}
	t.Events.Record(r.Context(), security.Event{Time: t.Now(), Kind: security.TokenRevoked, Severity: security.SeverityNotice,
		Actor: caller(r), Remote: r.RemoteAddr, Component: "api", Object: "token " + info.ID, Outcome: "ok",
		Detail: "of " + info.User})
	writeJSON(w, http.StatusOK, info.View(t.Now()))
}

// caller names the request's user as the write gate does: "api:<user>".
func caller(r *http.Request) string {
	user, ok := UserFrom(r.Context())
	if !ok {
		user = Anonymous
	}
	return "api:" + user
}
