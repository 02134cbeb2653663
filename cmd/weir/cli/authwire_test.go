package cli

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/config"
)

// A gateway run from a file with an auth block: nothing but /healthz and
// /readyz answers without credentials; a local user logs in with Basic
// (loopback); roles decide; a token created on the command line works at
// once and stops working once revoked.
func TestGatewayAuthFromFile(t *testing.T) {
	hash, err := auth.HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	text, err := demoConfig(closedPort(t), closedPort(t), "127.0.0.1:0", "weir-auth-test", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	text += "auth:\n  users:\n    - {name: vera, role: viewer, password_hash: \"" + hash + "\"}\n"
	cfg, err := config.Parse("auth.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { done <- runGateway(ctx, cfg, ln, log) }()
	var secrets []string
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
		// No password, token or hash in any log line, even at debug.
		for _, s := range secrets {
			if strings.Contains(logs.String(), s) {
				t.Errorf("secret %.10s… in the log", s)
			}
		}
		if !strings.Contains(logs.String(), "authentication failed") {
			t.Errorf("the debug log does not show the failed logins; the check above proves nothing:\n%s", logs.String())
		}
	}()
	waitFile(t, dataDir+"/"+apiAddrFile, done)

	do := func(method, path, user, pass, token string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"path":"`+demoNamespace+`/speed_setpoint","value":300}`))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		c := &http.Client{Timeout: 2 * time.Minute}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do("GET", "/healthz", "", "", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	for _, p := range []string{"/status", "/metrics", "/api/v1/values", "/api/v1/alarms", "/api/v1/audit"} {
		if code := do("GET", p, "", "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d, want 401", p, code)
		}
	}
	if code := do("GET", "/status", "vera", "wrong horse battery", ""); code != http.StatusUnauthorized {
		t.Errorf("/status with a wrong password: %d", code)
	}
	if code := do("GET", "/status", "vera", "correct horse battery", ""); code != 200 {
		t.Errorf("/status as vera: %d", code)
	}
	if code := do("POST", "/api/v1/write", "vera", "correct horse battery", ""); code != http.StatusForbidden {
		t.Errorf("write as viewer: %d, want 403", code)
	}
	code, out, errOut := run("token", "create", "-user", "op", "-role", "operator", "-expires", "1h", dataDir)
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	secrets = append(secrets, "correct horse battery", "wrong horse battery", hash, tok[len(tok)-64:], strings.Split(hash, "$")[5])
	if code := do("POST", "/api/v1/write", "", "", tok); code == http.StatusUnauthorized || code == http.StatusForbidden {
		t.Errorf("write with an operator token: %d", code)
	}
	id, _ := auth.ParseToken(tok)
	if code, _, e := run("token", "revoke", id, dataDir); code != 0 {
		t.Fatalf("revoke: %s", e)
	}
	if code := do("GET", "/status", "", "", tok); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", code)
	}
	// Refused and accepted logins, the refused write and the token made
	// on the command line are in the audit trail, with the remote address
	// (the trail takes them through a queue: wait, bounded).
	trail := dataDir + "/audit/writes.jsonl"
	want := []string{`"kind":"auth.login_failed"`, `"kind":"auth.access_denied"`, `"kind":"auth.login_ok"`, `"kind":"auth.token_created"`, `"remote":"127.0.0.1:`}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for {
		data, _ := os.ReadFile(trail)
		missing := ""
		for _, w := range want {
			if !strings.Contains(string(data), w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("the audit trail has no %s:\n%s", missing, data)
		case <-tick.C:
		}
	}
}
