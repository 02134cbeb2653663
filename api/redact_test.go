package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	hashAda = `$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo`
	hashBob = `$2b$10$abcdefghijklmnopqrstuuFQ4aZ0bX1y2z3A4b5C6d7E8f9G0h1I2`
)

// runningWithHashes holds the hashes in the three ways a file may write
// them: plain, double-quoted (with a comment) and in flow style.
var runningWithHashes = "auth:\n  users:\n    - name: ada\n      role: admin\n      password_hash: " + hashAda +
	"\n    - name: bob\n      role: engineer\n      password_hash: \"" + hashBob + "\" # rotated\n" +
	"    - {name: cy, role: viewer, password_hash: '" + hashAda + "'}\n"

// GET /api/v1/config (what the UI's config page shows) never carries a
// password hash; a configuration sent back with the placeholder keeps
// the running hashes, and a placeholder for an unknown user is refused.
func TestConfigRedactsPasswordHashes(t *testing.T) {
	fc := &fakeConfig{running: RunningConfig{YAML: runningWithHashes}}
	mux := http.NewServeMux()
	(&Config{Manager: fc}).Mount(mux)
	do := func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/yaml")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	code, body := do("GET", "/api/v1/config", "")
	var rc RunningConfig
	if err := json.Unmarshal([]byte(body), &rc); err != nil || code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	for _, secret := range []string{hashAda, hashBob, "argon2", "$2b$"} {
		if strings.Contains(body, secret) {
			t.Fatalf("GET /api/v1/config shows %q:\n%s", secret, rc.YAML)
		}
	}
	if n := strings.Count(rc.YAML, "password_hash: "+RedactedHash); n != 3 || !strings.Contains(rc.YAML, "password_hash: "+RedactedHash+"}") ||
		!strings.Contains(rc.YAML, "# rotated") {
		t.Fatalf("redacted text:\n%s", rc.YAML)
	}

	// The shown text, edited and applied, keeps every running hash.
	edited := strings.Replace(rc.YAML, "role: viewer", "role: operator", 1)
	if code, body := do("POST", "/api/v1/config/apply", edited); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	got := fc.applied[len(fc.applied)-1]
	want := strings.Replace(runningWithHashes, "role: viewer", "role: operator", 1)
	want = strings.Replace(strings.Replace(want, "password_hash: "+hashAda+"\n", `password_hash: "`+hashAda+"\"\n", 1),
		"password_hash: '"+hashAda+"'", `password_hash: "`+hashAda+`"`, 1)
	if !strings.HasSuffix(got, ": "+want) {
		t.Fatalf("applied:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, RedactedHash) {
		t.Fatal("the placeholder reached the gateway")
	}

	// A placeholder for a user the running configuration does not know.
	unknown := strings.Replace(rc.YAML, "name: ada", "name: eve", 1)
	if code, body := do("POST", "/api/v1/config/validate", unknown); code != 400 || !strings.Contains(body, `no user \"eve\"`) {
		t.Fatalf("unknown user: %d %s", code, body)
	}
}

func TestRedactHashesInDiff(t *testing.T) {
	d := "@@ -1,3 +1,3 @@\n       password_hash: " + hashAda + "\n-      role: viewer\n+      role: admin\n"
	if got := redactHashes(d); strings.Contains(got, "argon2") || !strings.Contains(got, "password_hash: "+RedactedHash+"\n") {
		t.Fatalf("%q", got)
	}
}
