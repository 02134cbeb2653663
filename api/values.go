package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/writegate"
)

// userKey is the context key of the authenticated user.
type userKey struct{}

// WithUser returns ctx carrying the authenticated user's name. The
// authentication middleware (RequireAuth) calls it through WithIdentity,
// which adds the role; the write endpoint reads both to name the caller
// ("api:<user>") and its role in the write gate and the audit trail.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// UserFrom returns the user WithUser stored, if any.
func UserFrom(ctx context.Context) (string, bool) {
	u, ok := ctx.Value(userKey{}).(string)
	return u, ok && u != ""
}

// Anonymous is the user named when no middleware authenticated one; write
// policies should not allow "api:anonymous".
const Anonymous = "anonymous"

// WriteGate is what POST /api/v1/write goes through; *writegate.Gate
// implements it.
type WriteGate interface {
	Write(ctx context.Context, req writegate.Request) (writegate.Result, error)
}

// ValueStore is what GET /api/v1/values reads; *latest.Store
// implements it.
type ValueStore interface {
	Snapshot(prefix string) []model.Sample
}

// AuditTail is what GET /api/v1/audit reads; *audit.Log implements it.
type AuditTail interface {
	Tail(n int) ([]audit.Entry, error)
}

var (
	_ WriteGate  = (*writegate.Gate)(nil)
	_ ValueStore = (*latest.Store)(nil)
	_ AuditTail  = (*audit.Log)(nil)
)

// Limits of the value and audit endpoints.
const (
	maxWriteBody      = 64 << 10
	defaultAuditLimit = 100
)

// Values serves the tag endpoints; mount it with Options.Extra:
//
//	api.New(api.Options{…, Extra: (&api.Values{Gate: g, Store: latest, Audit: trail}).Mount})
//
//	GET  /api/v1/values[?prefix=P]  newest sample of every tag (at or below P)
//	GET  /api/v1/stream[?tags=F,…]  server-sent events of those values (stream.go; when Store is a StreamSource)
//	GET  /api/v1/tags[?prefix=P]    one page of P's children in the tag tree (tags.go; when Store is a TagBrowser)
//	POST /api/v1/write              {"path":…, "value":…, "reason":…} through the write gate
//	GET  /api/v1/audit[?limit=N]    the newest N audit entries (default 100), oldest first
//
// An endpoint whose dependency is nil is not mounted.
type Values struct {
	Gate  WriteGate
	Store ValueStore
	Audit AuditTail
	// Now stamps write commands (IssuedAt); default time.Now.
	Now func() time.Time
	// StreamHeartbeat is the comment interval of GET /api/v1/stream;
	// default DefaultStreamHeartbeat.
	StreamHeartbeat time.Duration
	// StreamMaxAge ends a stream after this long (the client reconnects
	// and is authenticated again); default DefaultStreamMaxAge.
	StreamMaxAge time.Duration
	// StreamRecheck is how often an open stream checks its caller's
	// credentials; default DefaultStreamRecheck.
	StreamRecheck time.Duration
	Log           *slog.Logger
}

// Mount registers the endpoints on mux.
func (v *Values) Mount(mux *http.ServeMux) {
	if v.Now == nil {
		v.Now = time.Now
	}
	if v.Log == nil {
		v.Log = slog.New(slog.DiscardHandler)
	}
	if v.Store != nil {
		mux.HandleFunc("GET /api/v1/values", v.values)
		// Optional capabilities of the store (*latest.Store has both).
		if _, ok := v.Store.(StreamSource); ok {
			mux.HandleFunc("GET /api/v1/stream", v.stream) // stream.go
		}
		if _, ok := v.Store.(TagBrowser); ok {
			mux.HandleFunc("GET /api/v1/tags", v.tags) // tags.go
		}
	}
	if v.Gate != nil {
		mux.HandleFunc("POST /api/v1/write", v.write)
	}
	if v.Audit != nil {
		mux.HandleFunc("GET /api/v1/audit", v.audit)
	}
}

// valueJSON is one tag in GET /api/v1/values.
type valueJSON struct {
	Path       string          `json:"path"`
	Value      json.RawMessage `json:"value"`
	Quality    string          `json:"quality"`
	Reason     string          `json:"reason,omitempty"`
	SourceTime string          `json:"source_time,omitempty"`
	EdgeTime   string          `json:"edge_time,omitempty"`
}

func (v *Values) values(w http.ResponseWriter, r *http.Request) {
	samples := v.Store.Snapshot(r.URL.Query().Get("prefix"))
	out := make([]valueJSON, len(samples))
	for i, s := range samples {
		out[i] = valueJSON{Path: s.Path, Value: s.Value.AppendJSON(nil), Quality: s.Quality.Code.String(),
			Reason: s.Quality.Reason, SourceTime: stamp(s.SourceTime), EdgeTime: stamp(s.EdgeTime)}
	}
	writeJSON(w, http.StatusOK, struct {
		Values []valueJSON `json:"values"`
	}{out})
}

func stamp(ns int64) string {
	if ns == 0 {
		return ""
	}
	return model.Time(ns).Format(time.RFC3339Nano)
}

// writeBody is the request of POST /api/v1/write.
type writeBody struct {
	Path   string          `json:"path"`
	Value  json.RawMessage `json:"value"`
	Reason string          `json:"reason"`
}

// write passes a command to the gate as caller "api:<user>". It requires
// a JSON content type, which a cross-site form cannot send without a CORS
// preflight.
func (v *Values) write(w http.ResponseWriter, r *http.Request) {
	var req writeBody
	if !decodeJSONBody(w, r, maxWriteBody, false, "{path, value, reason}", &req) {
		return
	}
	if req.Path == "" || len(req.Value) == 0 {
		writeError(w, http.StatusBadRequest, "path and value are required", nil)
		return
	}
	val, err := audit.DecodeValue(req.Value)
	if err != nil {
		writeError(w, http.StatusBadRequest, "value: "+err.Error(), nil)
		return
	}
	// Every write to the plant says why, in the audit trail: required
	// here, not only by the UI's form, so that no client can skip it.
	if strings.TrimSpace(req.Reason) == "" {
		writeError(w, http.StatusBadRequest, "reason is required: say why you write (it goes into the audit trail)", nil)
		return
	}
	role, _ := RoleFrom(r.Context())
	res, err := v.Gate.Write(r.Context(), writegate.Request{
		Path: req.Path, Value: val, Caller: caller(r), Role: role, Remote: r.RemoteAddr, IssuedAt: v.Now(), Reason: req.Reason,
	})
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.Is(err, writegate.ErrAudit):
		v.Log.Error("write endpoint: audit trail unavailable", "err", err)
		// The caller learns why (a truncated trail, a full disk…): the
		// trail's own words, never a secret.
		msg := err.Error()
		if i := strings.Index(msg, writegate.ErrAudit.Error()); i >= 0 {
			msg = msg[i:]
		}
		writeError(w, http.StatusServiceUnavailable, strings.ReplaceAll(msg, "\n", "; ")+"; writes are disabled", nil)
	case errors.Is(err, writegate.ErrDenied):
		writeError(w, http.StatusForbidden, err.Error(), &res)
	default:
		msg := res.Reason
		if msg == "" {
			msg = err.Error()
		}
		writeError(w, http.StatusBadGateway, msg, &res)
	}
}

func (v *Values) audit(w http.ResponseWriter, r *http.Request) {
	limit := defaultAuditLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > audit.TailSize {
			writeError(w, http.StatusBadRequest, "limit must be 1.."+strconv.Itoa(audit.TailSize), nil)
			return
		}
		limit = n
	}
	entries, err := v.Audit.Tail(limit)
	if err != nil {
		v.Log.Error("audit endpoint", "err", err)
		writeError(w, http.StatusInternalServerError, "audit trail unreadable", nil)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Entries []audit.Entry `json:"entries"`
	}{entries})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": msg[, "result": entry]}.
func writeError(w http.ResponseWriter, code int, msg string, res *writegate.Result) {
	writeJSON(w, code, struct {
		Error  string            `json:"error"`
		Result *writegate.Result `json:"result,omitempty"`
	}{msg, res})
}
