package cli

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/auth"
)

func TestTokenCmd(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := run("token", "create", "-user", "scada", "-role", "operator", "-expires", "720h", "-note", "historian", dir)
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, auth.TokenPrefix) || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	store, err := auth.OpenTokens(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := store.Lookup(tok)
	if err != nil || info.User != "scada" || info.Role != "operator" {
		t.Fatalf("lookup: %+v, %v", info, err)
	}
	code, out, _ = run("token", "list", dir)
	if code != 0 || !strings.Contains(out, info.ID) || !strings.Contains(out, "active") || strings.Contains(out, tok[len(tok)-64:]) ||
		strings.Contains(out, info.Hash) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, out, e := run("token", "revoke", info.ID, dir); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: exit %d\n%s%s", code, out, e)
	}
	// The same store (a running gateway's) sees the revocation at once.
	if _, err := store.Lookup(tok); err == nil {
		t.Fatal("revoked token still accepted")
	}
	for name, args := range map[string][]string{
		"no expiry":      {"create", "-user", "u", "-role", "viewer", dir},
		"bad role":       {"create", "-user", "u", "-role", "root", "-expires", "1h", dir},
		"too long":       {"create", "-user", "u", "-role", "viewer", "-expires", "100000h", dir},
		"bad id":         {"revoke", "nope", dir},
		"unknown id":     {"revoke", "0123456789abcdef", dir},
		"too many args":  {"list", dir, dir},
		"revoke no args": {"revoke"},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, _ := run(append([]string{"token"}, args...)...); code == 0 {
				t.Fatal("exit 0")
			}
		})
	}
	// -cli saves it for weir alarms instead of printing it.
	code, out, _ = run("token", "create", "-user", "me", "-role", "operator", "-expires", "1h", "-cli", dir)
	saved, err := os.ReadFile(cliTokenFile(dir))
	if code != 0 || err != nil || strings.Contains(out, strings.TrimSpace(string(saved))) {
		t.Fatalf("create -cli: exit %d, %v\n%s", code, err, out)
	}
	if fi, _ := os.Stat(cliTokenFile(dir)); fi.Mode().Perm() != 0o600 {
		t.Errorf("cli-token mode %o", fi.Mode().Perm())
	}
}

// list and revoke on a DIR that is not a data dir with tokens say so and
// exit 1 (not an empty table); revoking twice says "already revoked".
func TestTokenCmdMissingDir(t *testing.T) {
	empty := t.TempDir()
	missing := filepath.Join(empty, "nonexistent")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"list, no dir":     {[]string{"list", missing}, "no data dir " + missing},
		"revoke, no dir":   {[]string{"revoke", "0123456789abcdef", missing}, "no data dir " + missing},
		"list, no auth/":   {[]string{"list", empty}, "has no auth/"},
		"revoke, no auth/": {[]string{"revoke", "0123456789abcdef", empty}, "has no auth/"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(append([]string{"token"}, tc.args...)...)
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(out, "ID") {
				t.Fatalf("exit %d, want 1 and %q\n%s%s", code, tc.want, out, errOut)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("list created the missing dir")
	}
	dir := t.TempDir()
	if code, _, errOut := run("token", "create", "-user", "u", "-role", "viewer", "-expires", "1h", dir); code != 0 {
		t.Fatalf("create: %s", errOut)
	}
	store, err := auth.OpenTokens(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := store.List()[0].ID
	for i, want := range []string{"token " + id + " of u revoked", "token " + id + " of u already revoked"} {
		if code, out, errOut := run("token", "revoke", id, dir); code != 0 || !strings.HasPrefix(out, want) {
			t.Fatalf("revoke %d: exit %d, want %q\n%s%s", i+1, code, want, out, errOut)
		}
	}
}

func TestHashPassword(t *testing.T) {
	for name, tc := range map[string]struct {
		input string
		ok    bool
	}{
		"good":      {"correct horse battery", true},
		"too short": {"short", false},
	} {
		t.Run(name, func(t *testing.T) {
			old := passwordInput
			passwordInput = func(io.Writer) (string, error) { return tc.input, nil }
			defer func() { passwordInput = old }()
			code, out, errOut := run("user", "hash-password")
			if (code == 0) != tc.ok {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			if !tc.ok {
				return
			}
			h := strings.TrimSpace(out)
			if !strings.HasPrefix(h, "$argon2id$v=19$m=") || !auth.CheckPassword(h, tc.input) || auth.CheckPassword(h, tc.input+"x") {
				t.Fatalf("hash %q does not verify", h)
			}
			if strings.Contains(out+errOut, tc.input) {
				t.Fatal("the password is echoed")
			}
		})
	}
}

// weir alarms sends a token from -token-file, $WEIR_TOKEN or the data
// dir's cli-token, and says what to do on 401.
func TestAlarmsSendsToken(t *testing.T) {
	m, err := alarms.New(alarms.Config{}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Define(alarms.Def{Name: "hot", Priority: alarms.High, Message: "product too hot"}); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	a, err := auth.New(auth.Config{}, auth.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{Status: nil, Auth: a,
		Extra: (&api.Alarms{Store: m}).Mount}).Handler())
	defer srv.Close()
	tok, _, err := a.Tokens().Create("op", "operator", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyDir := t.TempDir()

	t.Setenv("WEIR_TOKEN", "")
	code, _, e := run("alarms", "list", "-api", srv.URL, "--data-dir", emptyDir)
	if code != 1 || !strings.Contains(e, "401") || !strings.Contains(e, "-token-file") {
		t.Errorf("without a token: exit %d, %s", code, e)
	}
	if code, o, e := run("alarms", "list", "-api", srv.URL, "-token-file", tokFile); code != 0 || !strings.Contains(o, "hot") {
		t.Errorf("-token-file: exit %d\n%s%s", code, o, e)
	}
	if err := writeCLIToken(dataDir, tok); err != nil {
		t.Fatal(err)
	}
	if code, o, e := run("alarms", "list", "-api", srv.URL, "--data-dir", dataDir); code != 0 || !strings.Contains(o, "hot") {
		t.Errorf("cli-token: exit %d\n%s%s", code, o, e)
	}
	t.Setenv("WEIR_TOKEN", tok)
	if code, o, e := run("alarms", "list", "-api", srv.URL, "--data-dir", emptyDir); code != 0 || !strings.Contains(o, "hot") {
		t.Errorf("WEIR_TOKEN: exit %d\n%s%s", code, o, e)
	}
	t.Setenv("WEIR_TOKEN", "not-a-token")
	if code, _, e := run("alarms", "list", "-api", srv.URL); code != 1 || strings.Contains(e, "not-a-token") {
		t.Errorf("bad WEIR_TOKEN: exit %d, %s (must not be echoed)", code, e)
	}
}

// create, list and revoke take -data-dir DIR as weir alarms does, as well
// as the positional DIR; the two disagreeing is a usage error.
func TestTokenCmdDataDirFlag(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := run("token", "create", "-data-dir", dir, "-user", "u", "-role", "viewer", "-expires", "1h")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), auth.TokenPrefix) {
		t.Fatalf("create -data-dir: exit %d\n%s%s", code, out, errOut)
	}
	store, err := auth.OpenTokens(dir, nil)
	if err != nil || len(store.List()) != 1 {
		t.Fatalf("the token is not in %s: %v", dir, err)
	}
	id := store.List()[0].ID
	if code, out, errOut := run("token", "list", "-data-dir", dir); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("list -data-dir: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run("token", "revoke", "-data-dir", dir, id, t.TempDir()); code != 2 || !strings.Contains(errOut, "once") {
		t.Fatalf("two different dirs: exit %d\n%s", code, errOut)
	}
	if code, out, errOut := run("token", "revoke", "-data-dir", dir, id); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke -data-dir: exit %d\n%s%s", code, out, errOut)
	}
	if store.Active(id) {
		t.Fatal("still active after revoke -data-dir")
	}
}
