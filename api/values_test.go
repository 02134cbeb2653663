package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/writegate"
)

// stubWriter stands for a source; fail makes its writes fail.
type stubWriter struct {
	calls atomic.Int64
	fail  bool
}

func (s *stubWriter) WriteTag(_ context.Context, _ string, v model.Value) (model.Value, error) {
	s.calls.Add(1)
	if s.fail {
		return model.Int(100), errors.New("read-back mismatch: wrote 300, device holds 100")
	}
	return model.Int(100), nil
}

type valuesRig struct {
	h      http.Handler
	writer *stubWriter
	trail  *audit.Log
}

// newValuesRig mounts the endpoints on a Server whose middleware takes the
// user from the X-Test-User header, as an auth middleware would.
func newValuesRig(t testing.TB) *valuesRig {
	t.Helper()
	trail, err := audit.Open(audit.Config{File: filepath.Join(t.TempDir(), "audit.jsonl")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	gate, err := writegate.New(writegate.Config{Policies: []writegate.Policy{
		{Match: "plant/+/speed", Allow: true, Callers: []string{"api:alice"}, Type: "int", Min: new(60.0), Max: new(600.0)},
	}}, trail, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &stubWriter{}
	gate.Register("plant", w)
	store := latest.New(0)
	store.Process([]model.Sample{
		{Path: "plant/l1/speed", Value: model.Int(300), SourceTime: time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC).UnixNano()},
		{Path: "plant/l1/temp", Value: model.Float(21.5), Quality: model.Quality{Code: model.Uncertain, Reason: "stale"}},
		{Path: "plant/l2/speed", Value: model.Int(400)},
	})
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u := r.Header.Get("X-Test-User"); u != "" {
				r = r.WithContext(WithUser(r.Context(), u))
			}
			next.ServeHTTP(w, r)
		})
	}
	v := &Values{Gate: gate, Store: store, Audit: trail}
	srv := New(Options{Status: &fakeStatus{}, Middleware: auth, Extra: v.Mount})
	return &valuesRig{h: srv.Handler(), writer: w, trail: trail}
}

func (r *valuesRig) do(t *testing.T, method, path, body, user, ctype string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Code != http.StatusMethodNotAllowed {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: %d %q is not JSON: %v", method, path, rec.Code, rec.Body.String(), err)
		}
	}
	return rec.Code, out
}

func TestValuesEndpoint(t *testing.T) {
	r := newValuesRig(t)
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"plant/l1/speed", "plant/l1/temp", "plant/l2/speed"}},
		{"?prefix=plant/l1", []string{"plant/l1/speed", "plant/l1/temp"}},
		{"?prefix=plant/l", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			code, out := r.do(t, "GET", "/api/v1/values"+tt.query, "", "", "")
			vals, _ := out["values"].([]any)
			var paths []string
			for _, v := range vals {
				paths = append(paths, v.(map[string]any)["path"].(string))
			}
			if code != 200 || strings.Join(paths, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("%d %v", code, out)
			}
		})
	}
	_, out := r.do(t, "GET", "/api/v1/values?prefix=plant/l1", "", "", "")
	first := out["values"].([]any)[0].(map[string]any)
	second := out["values"].([]any)[1].(map[string]any)
	if first["value"] != 300.0 || first["quality"] != "good" || first["source_time"] != "2025-05-01T10:00:00Z" ||
		second["quality"] != "uncertain" || second["reason"] != "stale" {
		t.Fatalf("values %v", out)
	}
}

func TestWriteEndpoint(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		user   string
		ctype  string
		fail   bool
		code   int
		errMsg string
		caller string
		result string
	}{
		{name: "allowed", body: `{"path":"plant/l1/speed","value":420,"reason":"batch 42"}`, user: "alice", code: 200, caller: "api:alice", result: "allowed"},
		{name: "anonymous denied", body: `{"path":"plant/l1/speed","value":420,"reason":"r"}`, code: 403, errMsg: "caller api:anonymous not allowed", caller: "api:anonymous", result: "denied"},
		{name: "out of range", body: `{"path":"plant/l1/speed","value":700,"reason":"r"}`, user: "alice", code: 403, errMsg: "value 700 outside 60..600", result: "denied"},
		{name: "no policy", body: `{"path":"plant/l1/temp","value":20,"reason":"r"}`, user: "alice", code: 403, errMsg: "no policy allows writes to plant/l1/temp", result: "denied"},
		{name: "device failure", body: `{"path":"plant/l1/speed","value":300,"reason":"r"}`, user: "alice", fail: true, code: 502, errMsg: "read-back mismatch", result: "failed"},
		{name: "wrong content type", body: `{"path":"plant/l1/speed","value":420}`, user: "alice", ctype: "text/plain", code: 415},
		{name: "unknown field", body: `{"path":"plant/l1/speed","value":420,"force":true}`, user: "alice", code: 400},
		{name: "no reason", body: `{"path":"plant/l1/speed","value":420}`, user: "alice", code: 400, errMsg: "reason is required"},
		{name: "blank reason", body: `{"path":"plant/l1/speed","value":420,"reason":" \t"}`, user: "alice", code: 400, errMsg: "reason is required"},
		{name: "no value", body: `{"path":"plant/l1/speed"}`, user: "alice", code: 400, errMsg: "path and value are required"},
		{name: "object value", body: `{"path":"plant/l1/speed","value":{"a":1}}`, user: "alice", code: 400, errMsg: "value:"},
		{name: "trailing data", body: `{"path":"plant/l1/speed","value":1} {}`, user: "alice", code: 400},
		{name: "too large", body: `{"path":"` + strings.Repeat("x", 70<<10) + `","value":1}`, user: "alice", code: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newValuesRig(t)
			r.writer.fail = tt.fail
			ctype := tt.ctype
			if ctype == "" {
				ctype = "application/json; charset=utf-8"
			}
			code, out := r.do(t, "POST", "/api/v1/write", tt.body, tt.user, ctype)
			if code != tt.code {
				t.Fatalf("code %d, want %d: %v", code, tt.code, out)
			}
			if tt.errMsg != "" && !strings.Contains(out["error"].(string), tt.errMsg) {
				t.Fatalf("error %q, want %q", out["error"], tt.errMsg)
			}
			tail, _ := r.trail.Tail(10)
			if tt.result == "" {
				if len(tail) != 0 || r.writer.calls.Load() != 0 {
					t.Fatalf("a malformed request reached the gate: %v", tail)
				}
				return
			}
			res := out
			if code != 200 {
				res, _ = out["result"].(map[string]any)
			}
			if len(tail) != 1 || string(tail[0].Result) != tt.result || res["result"] != tt.result || res["seq"] != 1.0 {
				t.Fatalf("response %v, audit %v", out, tail)
			}
			if tt.caller != "" && tail[0].Caller != tt.caller {
				t.Fatalf("caller %q, want %q", tail[0].Caller, tt.caller)
			}
			if wantCalls := int64(0); tt.result != "denied" {
				wantCalls = 1
				if r.writer.calls.Load() != wantCalls {
					t.Fatalf("writer called %d times", r.writer.calls.Load())
				}
			} else if r.writer.calls.Load() != 0 {
				t.Fatal("a denied write reached the writer")
			}
		})
	}
}

func TestAuditEndpoint(t *testing.T) {
	r := newValuesRig(t)
	for _, v := range []string{"100", "200", "300"} {
		r.do(t, "POST", "/api/v1/write", `{"path":"plant/l1/speed","value":`+v+`,"reason":"r"}`, "alice", "application/json")
	}
	code, out := r.do(t, "GET", "/api/v1/audit?limit=2", "", "", "")
	entries, _ := out["entries"].([]any)
	if code != 200 || len(entries) != 2 {
		t.Fatalf("%d %v", code, out)
	}
	last := entries[1].(map[string]any)
	if last["seq"] != 3.0 || last["new"] != 300.0 || last["old"] != 100.0 || last["caller"] != "api:alice" || len(last["hash"].(string)) != 64 {
		t.Fatalf("last entry %v", last)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?limit=100000"} {
		if code, _ := r.do(t, "GET", "/api/v1/audit"+q, "", "", ""); code != 400 {
			t.Errorf("%s: code %d", q, code)
		}
	}
	if code, _ := r.do(t, "GET", "/api/v1/write", "", "", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/v1/write: %d", code)
	}
}

func TestUserContext(t *testing.T) {
	if _, ok := UserFrom(context.Background()); ok {
		t.Fatal("user in a bare context")
	}
	if u, ok := UserFrom(WithUser(context.Background(), "alice")); !ok || u != "alice" {
		t.Fatalf("got %q %v", u, ok)
	}
	if _, ok := UserFrom(WithUser(context.Background(), "")); ok {
		t.Fatal("empty user counted as authenticated")
	}
}

// FuzzWriteBody feeds arbitrary bodies to the write endpoint: it answers
// with JSON and a client-error or policy status, never a server error.
func FuzzWriteBody(f *testing.F) {
	f.Add(`{"path":"plant/l1/speed","value":420,"reason":"x"}`)
	f.Add(`{"path":"plant/l1/speed","value":[1,[2]]}`)
	f.Add(`{"path":"a/+/b","value":"x"}`)
	f.Add(`{"path":"plant/l1/speed","value":1e999}`)
	r := newValuesRig(f)
	f.Fuzz(func(t *testing.T, body string) {
		code, _ := r.do(t, "POST", "/api/v1/write", body, "alice", "application/json")
		switch code {
		case 200, 400, 403, 413:
		default:
			t.Fatalf("code %d for %q", code, body)
		}
	})
}
