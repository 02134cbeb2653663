package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeConfig is a ConfigManager: "bad" in a text makes it invalid, and
// Reload without a file answers ErrNoConfigFile.
type fakeConfig struct {
	running  RunningConfig
	noFile   bool
	readOnly bool     // the file cannot be written
	applied  []string // actor: text
}

func (f *fakeConfig) Running() RunningConfig { return f.running }

func (f *fakeConfig) Check(_ context.Context, data []byte) ConfigResult {
	if strings.Contains(string(data), "bad") {
		return ConfigResult{Errors: []ConfigProblem{{Line: 2, Key: "sources[0].name", Message: "must be set"}}, SHA256: "b"}
	}
	return ConfigResult{Valid: true, Diff: "--- running\n+++ new\n@@ -1,1 +1,1 @@\n-a\n+b\n", Summary: "sources: +plc2", SHA256: "a"}
}

func (f *fakeConfig) Apply(ctx context.Context, data []byte, actor string, persist bool) (ConfigResult, error) {
	if f.readOnly && persist {
		return ConfigResult{}, fmt.Errorf("%w: /etc/weir is read-only", ErrNotPersistable)
	}
	res := f.Check(ctx, data)
	if !res.Valid {
		return res, ErrConfigInvalid
	}
	f.applied = append(f.applied, actor+": "+string(data))
	res.Applied = true
	res.NotPersisted = !persist
	return res, nil
}

func (f *fakeConfig) Reload(ctx context.Context, actor string) (ConfigResult, error) {
	if f.noFile {
		return ConfigResult{}, ErrNoConfigFile
	}
	return f.Apply(ctx, []byte("reloaded"), actor, true)
}

// The configuration endpoints answer the shapes api/README.md documents:
// validate never applies, apply says 422 with every problem when invalid,
// reload without a file 409, and bodies must be YAML.
func TestConfigEndpoints(t *testing.T) {
	fc := &fakeConfig{running: RunningConfig{YAML: "a\n", SHA256: "x", Path: "/etc/weir/weir.yaml", AppliedAt: time.Unix(0, 0).UTC()}}
	mux := http.NewServeMux()
	(&Config{Manager: fc}).Mount(mux)
	do := func(method, path, ctype, body string) (*httptest.ResponseRecorder, map[string]any) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req = req.WithContext(WithIdentity(req.Context(), "eve", "engineer"))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var v map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &v)
		return rec, v
	}
	tests := []struct {
		name, method, path, ctype, body string
		code                            int
		check                           func(t *testing.T, v map[string]any)
	}{
		{"get", "GET", "/api/v1/config", "", "", 200, func(t *testing.T, v map[string]any) {
			if v["yaml"] != "a\n" || v["path"] != "/etc/weir/weir.yaml" || v["restart_needed"] == nil {
				t.Errorf("%v", v)
			}
		}},
		{"validate ok", "POST", "/api/v1/config/validate", "application/yaml", "b", 200, func(t *testing.T, v map[string]any) {
			if v["valid"] != true || v["applied"] != false || !strings.Contains(v["diff"].(string), "+b") {
				t.Errorf("%v", v)
			}
		}},
		{"validate bad", "POST", "/api/v1/config/validate", "application/yaml", "bad", 200, func(t *testing.T, v map[string]any) {
			errs, _ := v["errors"].([]any)
			if v["valid"] != false || len(errs) != 1 || errs[0].(map[string]any)["line"] != 2.0 {
				t.Errorf("%v", v)
			}
		}},
		{"apply not yaml", "POST", "/api/v1/config/apply", "text/plain", "b", 415, nil},
		{"apply bad", "POST", "/api/v1/config/apply", "application/yaml", "bad", 422, func(t *testing.T, v map[string]any) {
			if v["valid"] != false || v["applied"] != false {
				t.Errorf("%v", v)
			}
		}},
		{"apply ok", "POST", "/api/v1/config/apply", "application/yaml; charset=utf-8", "b", 200, func(t *testing.T, v map[string]any) {
			if v["applied"] != true || v["summary"] != "sources: +plc2" {
				t.Errorf("%v", v)
			}
		}},
		{"apply too large", "POST", "/api/v1/config/apply", "application/yaml", strings.Repeat("x", MaxConfigBody+1), 413, nil},
		{"reload", "POST", "/api/v1/config/reload", "", "", 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, v := do(tt.method, tt.path, tt.ctype, tt.body)
			if rec.Code != tt.code {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body.String(), tt.code)
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
	if len(fc.applied) != 2 || fc.applied[0] != "api:eve: b" || fc.applied[1] != "api:eve: reloaded" {
		t.Fatalf("applied %q", fc.applied)
	}
	fc.noFile = true
	if rec, _ := do("POST", "/api/v1/config/reload", "", ""); rec.Code != http.StatusConflict {
		t.Fatalf("reload without a file: %d", rec.Code)
	}
	// A file that cannot be written: 409 in words; ?persist=false runs it
	// and says it is not persisted.
	fc.readOnly = true
	if rec, v := do("POST", "/api/v1/config/apply", "application/yaml", "b"); rec.Code != http.StatusConflict ||
		!strings.Contains(v["error"].(string), "read-only") {
		t.Fatalf("apply to a read-only file: %d %v", rec.Code, v)
	}
	if rec, v := do("POST", "/api/v1/config/apply?persist=false", "application/yaml", "b"); rec.Code != http.StatusOK ||
		v["applied"] != true || v["not_persisted"] != true {
		t.Fatalf("apply ?persist=false: %d %v", rec.Code, v)
	}
	if rec, _ := do("POST", "/api/v1/config/apply?persist=maybe", "application/yaml", "b"); rec.Code != http.StatusBadRequest {
		t.Fatalf("apply ?persist=maybe: %d", rec.Code)
	}
}
