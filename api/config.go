package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"
)

// ConfigManager is what the configuration endpoints drive: the running
// gateway (gateway.Gateway implements it). Its methods are safe for
// concurrent use; applies are serialised by the implementation. Texts are
// YAML with secrets as references ({env: …}, {file: …}), never values.
type ConfigManager interface {
	// Running describes the configuration in force.
	Running() RunningConfig
	// Check validates data (a whole configuration file) and compares it
	// with the running one, without applying anything.
	Check(ctx context.Context, data []byte) ConfigResult
	// Apply validates data and applies it live (hot reload) as actor; a
	// gateway run from a file rewrites the file when persist is true
	// (ErrNotPersistable, nothing applied, when it cannot be written);
	// with persist false the file stays and the change runs until the
	// next restart (NotPersisted in the result). ErrConfigInvalid (with
	// the problems in the result) when data is not valid.
	Apply(ctx context.Context, data []byte, actor string, persist bool) (ConfigResult, error)
	// Reload re-reads the gateway's configuration file and applies it.
	// ErrNoConfigFile when the gateway runs from no file.
	Reload(ctx context.Context, actor string) (ConfigResult, error)
}

// Sentinel errors of a ConfigManager, answered 422 and 409.
var (
	ErrConfigInvalid = errors.New("configuration invalid")
	ErrNoConfigFile  = errors.New("the gateway runs from no configuration file")
	// ErrNotPersistable: the configuration file cannot be written (a
	// read-only /etc under systemd); the error's text says the ways out.
	ErrNotPersistable = errors.New("the configuration file cannot be written")
)

// RunningConfig is GET /api/v1/config.
type RunningConfig struct {
	YAML      string    `json:"yaml"`
	SHA256    string    `json:"sha256"`
	Path      string    `json:"path"` // "" when built in (the demo)
	AppliedAt time.Time `json:"applied_at"`
	// RestartNeeded lists keys changed since the start that only a
	// restart applies.
	RestartNeeded []string `json:"restart_needed"`
}

// ConfigProblem is one validation error or warning, placed in the text.
type ConfigProblem struct {
	Line    int    `json:"line"` // 0 when unknown
	Key     string `json:"key"`  // dotted key path, may be empty
	Message string `json:"message"`
	Warning bool   `json:"warning,omitempty"`
}

// ConfigResult answers validate, apply and reload.
type ConfigResult struct {
	Valid  bool            `json:"valid"`
	Errors []ConfigProblem `json:"errors"` // warnings too, marked
	// Diff is a unified line diff from the running text to the new one.
	Diff string `json:"diff"`
	// Summary says what changes in one line ("sources: +plc2; ...").
	Summary string `json:"summary"`
	// RestartNeeded lists changed keys that a live apply leaves for the
	// next restart.
	RestartNeeded []string `json:"restart_needed"`
	SHA256        string   `json:"sha256"`
	// Applied is true once the change runs (apply, reload).
	Applied bool `json:"applied"`
	// NotPersisted: applied with persist=false; the file keeps the old
	// configuration, so a restart runs that again.
	NotPersisted bool `json:"not_persisted,omitempty"`
}

// Config serves the configuration endpoints; mount it with Options.Extra
// (all need the engineer role, see routeRoles):
//
//	GET  /api/v1/config           the running configuration (RunningConfig)
//	POST /api/v1/config/validate  body YAML → ConfigResult (nothing applied)
//	POST /api/v1/config/apply     body YAML → validate and apply; 422 with every problem when invalid;
//	                              409 when the file cannot be written (?persist=false: do not write it)
//	POST /api/v1/config/reload    re-read the gateway's file and apply it; 409 without a file
//
// Bodies are YAML (Content-Type application/yaml), at most MaxConfigBody.
type Config struct {
	Manager ConfigManager
	Log     *slog.Logger
}

// MaxConfigBody bounds a configuration sent to the API (config.MaxFileSize).
const MaxConfigBody = 1 << 20

// Mount registers the endpoints on mux; nothing when Manager is nil.
func (c *Config) Mount(mux *http.ServeMux) {
	if c.Manager == nil {
		return
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	mux.HandleFunc("GET /api/v1/config", c.get)
	mux.HandleFunc("POST /api/v1/config/validate", c.validate)
	mux.HandleFunc("POST /api/v1/config/apply", c.apply)
	mux.HandleFunc("POST /api/v1/config/reload", c.reload)
}

func (c *Config) get(w http.ResponseWriter, _ *http.Request) {
	rc := c.Manager.Running()
	rc.YAML = redactHashes(rc.YAML)
	if rc.RestartNeeded == nil {
		rc.RestartNeeded = []string{}
	}
	writeJSON(w, http.StatusOK, rc)
}

// readYAMLBody reads the request's YAML body; false when it answered an
// error. A YAML media type is required: a form or text/plain post from
// another site cannot reach here without a CORS preflight.
func readYAMLBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
	case "application/yaml", "application/x-yaml", "text/yaml":
	default:
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/yaml", nil)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxConfigBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large", nil)
		return nil, false
	}
	return body, true
}

func (c *Config) validate(w http.ResponseWriter, r *http.Request) {
	body, ok := readYAMLBody(w, r)
	if !ok {
		return
	}
	body, err := restoreHashes(body, c.Manager.Running().YAML)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, normal(c.Manager.Check(r.Context(), body)))
}

func (c *Config) apply(w http.ResponseWriter, r *http.Request) {
	body, ok := readYAMLBody(w, r)
	if !ok {
		return
	}
	persist := true
	switch r.URL.Query().Get("persist") {
	case "", "true":
	case "false":
		persist = false
	default:
		writeError(w, http.StatusBadRequest, "persist must be true or false", nil)
		return
	}
	body, err := restoreHashes(body, c.Manager.Running().YAML)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	res, err := c.Manager.Apply(r.Context(), body, caller(r), persist)
	c.answer(w, res, err)
}

func (c *Config) reload(w http.ResponseWriter, r *http.Request) {
	res, err := c.Manager.Reload(r.Context(), caller(r))
	c.answer(w, res, err)
}

// answer sends the result: 200 applied, 422 invalid (with the problems),
// 409 without a file to reload or when the file cannot be written (the
// error says why and the ways out), 500 when applying failed.
func (c *Config) answer(w http.ResponseWriter, res ConfigResult, err error) {
	res = normal(res)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.Is(err, ErrConfigInvalid):
		writeJSON(w, http.StatusUnprocessableEntity, res)
	case errors.Is(err, ErrNoConfigFile), errors.Is(err, ErrNotPersistable):
		writeError(w, http.StatusConflict, err.Error(), nil)
	default:
		c.Log.Error("config apply failed", "err", err)
		writeError(w, http.StatusInternalServerError, "apply failed: "+err.Error(), nil)
	}
}

// normal makes nil lists empty, so clients see [] rather than null.
// The diff is redacted too: its context lines may hold a hash.
func normal(res ConfigResult) ConfigResult {
	res.Diff = redactHashes(res.Diff)
	if res.Errors == nil {
		res.Errors = []ConfigProblem{}
	}
	if res.RestartNeeded == nil {
		res.RestartNeeded = []string{}
	}
	return res
}
