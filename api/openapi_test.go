package api

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-edge/weir/auth"
)

// stubDeps satisfies every dependency of the Mount functions with nil
// methods: the route test resolves patterns and never calls a handler.
type stubDeps struct {
	WriteGate
	ValueStore
	StreamSource
	TagBrowser
	AuditTail
	AlarmStore
	HistoryStore
	WritePolicies
	AuditVerifier
	FlowMapper
}

// fullServer mounts every endpoint of the package, as weir run does.
func fullServer(t *testing.T) *Server {
	t.Helper()
	d := stubDeps{}
	return New(Options{Status: &fakeStatus{}, Extra: func(mux *http.ServeMux) {
		(&Values{Gate: d, Store: d, Audit: d}).Mount(mux)
		(&Alarms{Store: d}).Mount(mux)
		(&Tokens{Store: &auth.TokenStore{}}).Mount(mux)
		(&History{Store: d}).Mount(mux)
		(&WritePolicy{Gate: d}).Mount(mux)
		(&AuditVerify{Trail: d}).Mount(mux)
		(&Config{Manager: &fakeConfig{}}).Mount(mux)
		(&Flows{Mapper: d}).Mount(mux)
	}})
}

// sourceRoutes finds every pattern the package's code registers on a mux
// (x.Handle / x.HandleFunc with a "METHOD /path" literal), so that a route
// added anywhere in api/ is seen without being listed by hand.
func sourceRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: route pattern is not a string literal; write it out so this test sees it", fset.Position(call.Pos()))
				return true
			}
			p, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
			return true
		})
	}
	slices.Sort(out)
	return out
}

type openAPIOp struct {
	Role       string                     `json:"x-weir-role"`
	Security   *[]map[string][]string     `json:"security"`
	Parameters []map[string]any           `json:"parameters"`
	Responses  map[string]json.RawMessage `json:"responses"`
}

var methods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// documentedRoutes returns "METHOD /path" for every operation of doc.
func documentedRoutes(t *testing.T, doc map[string]any) map[string]openAPIOp {
	t.Helper()
	paths, _ := doc["paths"].(map[string]any)
	out := map[string]openAPIOp{}
	for p, item := range paths {
		raw, _ := json.Marshal(item)
		var ops map[string]json.RawMessage
		if err := json.Unmarshal(raw, &ops); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var pathParams struct {
			Parameters []map[string]any `json:"parameters"`
		}
		_ = json.Unmarshal(raw, &pathParams)
		for m, opRaw := range ops {
			if !slices.Contains(methods, m) {
				continue
			}
			var op openAPIOp
			if err := json.Unmarshal(opRaw, &op); err != nil {
				t.Fatalf("%s %s: %v", m, p, err)
			}
			op.Parameters = append(op.Parameters, pathParams.Parameters...)
			out[strings.ToUpper(m)+" "+p] = op
		}
	}
	return out
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// Every route the server mounts is documented with its method, every
// documented path and method is served, and each operation's x-weir-role
// is what the access table enforces.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	documented := documentedRoutes(t, doc)
	mounted := sourceRoutes(t)
	if len(mounted) < 10 {
		t.Fatalf("found only %d routes in the source: %v", len(mounted), mounted)
	}
	for _, r := range mounted {
		if _, ok := documented[r]; !ok {
			t.Errorf("route %q is mounted but not in openapi.json", r)
		}
	}
	srv := fullServer(t)
	for r, op := range documented {
		if !slices.Contains(mounted, r) {
			t.Errorf("openapi.json documents %q, which no code mounts", r)
		}
		method, p, _ := strings.Cut(r, " ")
		concrete := pathParam.ReplaceAllString(p, "x")
		req := httptest.NewRequest(method, concrete, nil)
		if _, pattern := srv.mux.Handler(req); pattern != r {
			t.Errorf("%s %s is served by %q, want %q", method, concrete, pattern, r)
		}
		role, public := RequiredRole(method, concrete, false)
		want := string(role)
		if public {
			want = "public"
		}
		if op.Role != want {
			t.Errorf("%s: x-weir-role %q, the access table says %q", r, op.Role, want)
		}
		if public != (op.Security != nil && len(*op.Security) == 0) {
			t.Errorf("%s: public %v but security %v", r, public, op.Security)
		}
		_, ok200 := op.Responses["200"]
		_, ok201 := op.Responses["201"]
		if !ok200 && !ok201 {
			t.Errorf("%s: no success response", r)
		}
		if !public {
			for _, code := range []string{"401", "403", "429"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s: no %s response", r, code)
				}
			}
		}
		for _, m := range pathParam.FindAllStringSubmatch(p, -1) {
			found := false
			for _, prm := range op.Parameters {
				prm = resolve(t, doc, prm)
				if prm["in"] == "path" && prm["name"] == m[1] && prm["required"] == true {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: path parameter %q not declared (in: path, required: true)", r, m[1])
			}
		}
	}
}

// resolve follows v's $ref, if it has one.
func resolve(t *testing.T, doc map[string]any, v map[string]any) map[string]any {
	t.Helper()
	ref, ok := v["$ref"].(string)
	if !ok {
		return v
	}
	got, err := pointer(doc, ref)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	m, _ := got.(map[string]any)
	return m
}

// pointer resolves a local reference "#/a/b" (JSON Pointer, RFC 6901).
func pointer(doc any, ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("not a local reference: %s", ref)
	}
	cur := doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("no %q in %s", tok, ref)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("no %q in %s", tok, ref)
		}
	}
	return cur, nil
}

// The document is OpenAPI-shaped: version, info, paths, components, and
// every $ref resolves.
func TestOpenAPIDocumentShape(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") && !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.0.x or 3.1.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	if s, _ := info["title"].(string); s == "" {
		t.Error("info.title missing")
	}
	if s, _ := info["version"].(string); s == "" {
		t.Error("info.version missing")
	}
	if paths, _ := doc["paths"].(map[string]any); len(paths) == 0 {
		t.Error("no paths")
	}
	schemes, _ := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	for name, typ := range map[string]string{"bearer": "http", "basic": "http", "mtls": "mutualTLS"} {
		s, _ := schemes[name].(map[string]any)
		if s["type"] != typ {
			t.Errorf("security scheme %s: %v, want type %s", name, s, typ)
		}
	}
	refs := 0
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "$ref" {
					refs++
					ref, _ := c.(string)
					if _, err := pointer(doc, ref); err != nil {
						t.Errorf("%s: $ref %q does not resolve: %v", at, ref, err)
					}
					continue
				}
				walk(at+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(at+"/"+strconv.Itoa(i), c)
			}
		}
	}
	walk("#", doc)
	if refs == 0 {
		t.Error("no $ref found; the walk is broken")
	}
}

func TestOpenAPIServed(t *testing.T) {
	h := fullServer(t).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", OpenAPIPath, nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec.Body.String() != string(openAPIDoc) {
		t.Fatal("served document differs from the embedded one")
	}
	if got, err := os.ReadFile("openapi.json"); err != nil || string(got) != string(OpenAPI()) {
		t.Fatalf("OpenAPI() differs from openapi.json: %v", err)
	}
}
