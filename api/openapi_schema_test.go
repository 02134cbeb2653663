package api

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/security"
)

// checkSchema validates v against the subset of JSON Schema the document
// uses ($ref, allOf, type, enum, const, required, properties,
// additionalProperties, items, pattern, minimum): enough to catch
// a handler answering a shape the document does not describe.
func checkSchema(doc map[string]any, s map[string]any, v any, at string) error {
	if ref, ok := s["$ref"].(string); ok {
		r, err := pointer(doc, ref)
		if err != nil {
			return err
		}
		s, _ = r.(map[string]any)
	}
	for _, sub := range asList(s["allOf"]) {
		if err := checkSchema(doc, sub.(map[string]any), v, at); err != nil {
			return err
		}
	}
	if t, ok := s["type"]; ok {
		var types []string
		if one, ok := t.(string); ok {
			types = []string{one}
		} else {
			for _, x := range asList(t) {
				types = append(types, x.(string))
			}
		}
		if !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
			return fmt.Errorf("%s: %s, want %v", at, jsonType(v), types)
		}
	}
	if e, ok := s["enum"]; ok && !slices.ContainsFunc(asList(e), func(x any) bool { return fmt.Sprint(x) == fmt.Sprint(v) }) {
		return fmt.Errorf("%s: %v not in %v", at, v, e)
	}
	if c, ok := s["const"]; ok && fmt.Sprint(c) != fmt.Sprint(v) {
		return fmt.Errorf("%s: %v, want %v", at, v, c)
	}
	if p, ok := s["pattern"].(string); ok {
		if str, ok := v.(string); ok && !regexp.MustCompile(p).MatchString(str) {
			return fmt.Errorf("%s: %q does not match %s", at, str, p)
		}
	}
	if n, ok := v.(float64); ok {
		if m, ok := s["minimum"].(float64); ok && n < m {
			return fmt.Errorf("%s: %v < %v", at, n, m)
		}
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := v[r.(string)]; !ok {
				return fmt.Errorf("%s: required member %q missing", at, r)
			}
		}
		for k, val := range v {
			ps, ok := props[k].(map[string]any)
			if !ok {
				switch ap := s["additionalProperties"].(type) {
				case bool:
					if !ap {
						return fmt.Errorf("%s: member %q is not in the schema", at, k)
					}
					continue
				case map[string]any:
					ps = ap
				default:
					continue
				}
			}
			if err := checkSchema(doc, ps, val, at+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range v {
				if err := checkSchema(doc, items, x, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// documentedResponse finds the schema of the response operation r (its
// mux pattern) documents for code and content type ct.
func documentedResponse(t *testing.T, doc map[string]any, r string, code int, ct string) (map[string]any, error) {
	t.Helper()
	method, p, _ := strings.Cut(r, " ")
	op, _ := doc["paths"].(map[string]any)[p].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if op == nil {
		return nil, fmt.Errorf("%s is not documented", r)
	}
	resp, ok := op["responses"].(map[string]any)[fmt.Sprint(code)].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: response %d is not documented", r, code)
	}
	resp = resolve(t, doc, resp)
	mt, _, _ := mime.ParseMediaType(ct)
	media, ok := resp["content"].(map[string]any)[mt].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: response %d has no %s content", r, code, mt)
	}
	s, _ := media["schema"].(map[string]any)
	return s, nil
}

// Real answers of the handlers — successes and refusals — have a status
// code the document lists for the operation and a body its schema
// accepts.
func TestOpenAPIResponsesMatchSchemas(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	mux := fullServer(t).mux
	check := func(t *testing.T, h http.Handler, method, path, body, ctype string, hdr map[string]string, wantCode int) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr = "192.0.2.10:41000"
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != wantCode {
			t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body.String(), wantCode)
		}
		_, pattern := mux.Handler(req)
		s, err := documentedResponse(t, doc, pattern, rec.Code, rec.Header().Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		var v any = rec.Body.String()
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s %s: not JSON: %v", method, path, err)
			}
		}
		if err := checkSchema(doc, s, v, "body"); err != nil {
			t.Errorf("%s %s → %d: %v\n%s", method, path, rec.Code, err, rec.Body.String())
		}
	}

	vr := newValuesRig(t)
	alice := map[string]string{"X-Test-User": "alice"}
	for _, c := range []struct {
		name, method, path, body, ctype string
		hdr                             map[string]string
		code                            int
	}{
		{"values", "GET", "/api/v1/values", "", "", nil, 200},
		{"stream bad filter", "GET", "/api/v1/stream?tags=a/%23/b", "", "", nil, 400},
		{"tags root", "GET", "/api/v1/tags", "", "", nil, 200},
		{"tags page", "GET", "/api/v1/tags?prefix=plant/l1&limit=1", "", "", nil, 200},
		{"tags bad limit", "GET", "/api/v1/tags?limit=1001", "", "", nil, 400},
		{"write ok", "POST", "/api/v1/write", `{"path":"plant/l1/speed","value":300,"reason":"test"}`, "application/json", alice, 200},
		{"write denied", "POST", "/api/v1/write", `{"path":"plant/l1/speed","value":300,"reason":"test"}`, "application/json", map[string]string{"X-Test-User": "bob"}, 403},
		{"write out of range", "POST", "/api/v1/write", `{"path":"plant/l1/speed","value":9000,"reason":"test"}`, "application/json", alice, 403},
		{"write without reason", "POST", "/api/v1/write", `{"path":"plant/l1/speed","value":300}`, "application/json", alice, 400},
		{"write bad body", "POST", "/api/v1/write", `{"path":"plant/l1/speed"}`, "application/json", alice, 400},
		{"write not json", "POST", "/api/v1/write", `path=x`, "application/x-www-form-urlencoded", alice, 415},
		{"audit", "GET", "/api/v1/audit?limit=5", "", "", nil, 200},
		{"audit bad limit", "GET", "/api/v1/audit?limit=0", "", "", nil, 400},
		{"healthz", "GET", "/healthz", "", "", nil, 200},
		{"readyz", "GET", "/readyz", "", "", nil, 503},
		{"status", "GET", "/status", "", "", nil, 200},
		{"openapi", "GET", "/api/v1/openapi.json", "", "", nil, 200},
	} {
		t.Run(c.name, func(t *testing.T) { check(t, vr.h, c.method, c.path, c.body, c.ctype, c.hdr, c.code) })
	}
	vr.writer.fail = true
	t.Run("write failed", func(t *testing.T) {
		check(t, vr.h, "POST", "/api/v1/write", `{"path":"plant/l1/speed","value":300,"reason":"test"}`, "application/json", alice, 502)
	})

	ar := newAuthRig(t, auth.Config{})
	bearer := func(role security.Role) map[string]string {
		return map[string]string{"Authorization": "Bearer " + ar.tokens[role]}
	}
	_, info, err := ar.a.Tokens().Create("bob", security.Viewer, time.Hour, "to revoke")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, method, path, body string
		role                     security.Role
		code                     int
	}{
		{"alarms", "GET", "/api/v1/alarms?state=unack", "", security.Viewer, 200},
		{"alarms bad filter", "GET", "/api/v1/alarms?shelved=maybe", "", security.Viewer, 400},
		{"alarm", "GET", "/api/v1/alarms/hot", "", security.Viewer, 200},
		{"alarm unknown", "GET", "/api/v1/alarms/cold", "", security.Viewer, 404},
		{"ack", "POST", "/api/v1/alarms/hot/ack", `{"comment":"seen"}`, security.Operator, 200},
		{"ack again", "POST", "/api/v1/alarms/hot/ack", ``, security.Operator, 409},
		{"shelve", "POST", "/api/v1/alarms/hot/shelve", `{"duration":"1h","reason":"work"}`, security.Operator, 200},
		{"shelve both", "POST", "/api/v1/alarms/hot/shelve", `{"duration":"1h","until":"2030-01-01T00:00:00Z"}`, security.Operator, 400},
		{"unshelve", "POST", "/api/v1/alarms/hot/unshelve", `{"reason":"done"}`, security.Operator, 200},
		{"unshelve again", "POST", "/api/v1/alarms/hot/unshelve", ``, security.Operator, 409},
		{"ack unknown", "POST", "/api/v1/alarms/cold/ack", ``, security.Operator, 404},
		{"tokens", "GET", "/api/v1/tokens", "", security.Admin, 200},
		{"token create", "POST", "/api/v1/tokens", `{"user":"carol","role":"viewer","expires":"1h","note":"n"}`, security.Admin, 201},
		{"token create bad", "POST", "/api/v1/tokens", `{"user":"carol","role":"king","expires":"1h"}`, security.Admin, 400},
		{"token revoke", "DELETE", "/api/v1/tokens/" + info.ID, "", security.Admin, 200},
		{"token revoke unknown", "DELETE", "/api/v1/tokens/0123456789abcdef", "", security.Admin, 404},
		{"unauthenticated", "GET", "/status", "", "", 401},
		{"forbidden", "GET", "/api/v1/tokens", "", security.Viewer, 403},
		{"forbidden write", "POST", "/api/v1/write", `{"path":"a","value":1}`, security.Viewer, 403},
		{"openapi", "GET", "/api/v1/openapi.json", "", security.Viewer, 200},
		{"flows", "GET", "/api/v1/flows", "", security.Viewer, 200},
		{"history raw", "GET", "/api/v1/history?tag=plant/speed&limit=3&from=" + url.QueryEscape(historyBase.Format(time.RFC3339)), "", security.Viewer, 200},
		{"history aggregate", "GET", "/api/v1/history?tag=plant/speed&points=10&from=" + url.QueryEscape(historyBase.Format(time.RFC3339)), "", security.Viewer, 200},
		{"history bad", "GET", "/api/v1/history?tag=plant/speed&points=0", "", security.Viewer, 400},
		{"history unauthenticated", "GET", "/api/v1/history?tag=plant/speed", "", "", 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr map[string]string
			if c.role != "" {
				hdr = bearer(c.role)
			}
			ctype := ""
			if c.method == "POST" {
				ctype = "application/json"
			}
			check(t, ar.h, c.method, c.path, c.body, ctype, hdr, c.code)
		})
	}
	for _, c := range []struct {
		name, method, path, body, ctype string
		code                            int
	}{
		{"config", "GET", "/api/v1/config", "", "", 200},
		{"config validate", "POST", "/api/v1/config/validate", "sources: []", "application/yaml", 200},
		{"config validate invalid", "POST", "/api/v1/config/validate", "bad", "application/yaml", 200},
		{"config apply", "POST", "/api/v1/config/apply", "sources: []", "application/yaml", 200},
		{"config apply invalid", "POST", "/api/v1/config/apply", "bad", "application/yaml", 422},
		{"config apply json", "POST", "/api/v1/config/apply", "{}", "application/json", 415},
		{"config reload", "POST", "/api/v1/config/reload", "", "", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			check(t, ar.h, c.method, c.path, c.body, c.ctype, bearer(security.Engineer), c.code)
		})
	}
}
