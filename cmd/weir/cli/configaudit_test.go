package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/gateway"
	"github.com/weir-edge/weir/security"
)

// An apply through the API is audited with the hash AND the diff: GET
// /api/v1/audit shows the component-level diff lines and the keys that
// wait for a restart in the config.applied entry.
func TestConfigAppliedAuditShowsDiff(t *testing.T) {
	dataDir := t.TempDir()
	text, err := demoConfig(closedPort(t), closedPort(t), "127.0.0.1:0", "weir-cfgaudit", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(file, []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	store, err := auth.OpenTokens(dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := store.Create("test", security.Admin, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gatewayOptions(testLogger(t), ln, os.Stderr, gateway.Options{ConfigPath: file, ConfigData: []byte(text)}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()
	waitFile(t, filepath.Join(dataDir, apiAddrFile), done)
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 2 * time.Minute}
	do := func(method, path, ctype, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if !strings.Contains(text, "\nsinks:\n") || !strings.Contains(text, "id: weir-demo\n") {
		t.Fatal("the demo configuration changed shape; adapt the edit below")
	}
	changed := strings.Replace(text, "\nsinks:\n", "\nsinks:\n  - name: extra\n    buffer: {type: memory}\n"+
		"    mqtt: {url: \"tcp://127.0.0.1:1\", client_id: extra}\n", 1)
	changed = strings.Replace(changed, "id: weir-demo\n", "id: weir-demo-2\n", 1)
	resp := do("POST", "/api/v1/config/apply", "application/yaml", changed)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("apply: %d", resp.StatusCode)
	}
	// The security event reaches the trail through the recorder's queue:
	// poll, bounded.
	var last []auditItem
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		last = auditEntries(t, do("GET", "/api/v1/audit?limit=1000", "", ""))
		for _, e := range last {
			if e.Kind == "config.applied" && strings.Contains(e.Detail, "changes:") {
				for _, want := range []string{"sha256 ", "diff: sink extra added", "restart needed for: node"} {
					if !strings.Contains(e.Detail, want) {
						t.Errorf("config.applied detail %q does not say %q", e.Detail, want)
					}
				}
				return
			}
		}
	}
	t.Fatalf("no config.applied entry of the apply in %+v", last)
}

type auditItem struct{ Kind, Detail, Outcome string }

func auditEntries(t *testing.T, resp *http.Response) []auditItem {
	t.Helper()
	defer resp.Body.Close()
	var out struct{ Entries []auditItem }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("audit: %d %v", resp.StatusCode, err)
	}
	return out.Entries
}
