package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitFile waits until path exists (the gateway writes it once its HTTP
// listener is up) or the demo ended.
func waitFile(t *testing.T, path string, done <-chan error) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("demo ended before writing %s: %v", path, err)
		case <-deadline:
			t.Fatalf("%s never appeared", path)
		case <-tick.C:
		}
	}
}

// The demo keeps its state under the user's cache dir and says so; the
// audit trail and the buffer it leaves can be looked at with the commands
// it prints, and weir alarms finds it without -api.
func TestDemoDataDirTools(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	dir := filepath.Join(cache, "weir", "demo")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runNamed(ctx, "run", []string{"--http-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0",
			"--sim-listen", "127.0.0.1:0", "--log-level", "warn"}, &out, &errOut)
	}()
	waitFile(t, filepath.Join(dir, apiAddrFile), done)
	trail := filepath.Join(dir, "audit", "writes.jsonl")
	for _, want := range []string{"data dir (kept)             " + dir, "weir audit verify " + trail, "weir buffer list " + dir} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo does not print %q:\n%s", want, out.String())
		}
	}

	for _, args := range [][]string{{"list"}, {"list", "--data-dir", dir}} {
		var o, e bytes.Buffer
		if err := runNamed(ctx, "alarms", args, &o, &e); err != nil || !strings.Contains(o.String(), "filler_high_vibration") {
			t.Errorf("alarms %v = %v\n%s%s", args, err, o.String(), e.String())
		}
	}
	// The demo prints its admin token once, and its curl lines send it.
	tokBytes, err := os.ReadFile(cliTokenFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(tokBytes))
	if n := strings.Count(out.String(), tok); n != 1 || !strings.Contains(out.String(), `curl -s -H "Authorization: Bearer $WEIR_TOKEN"`) {
		t.Errorf("the token is printed %d times, want once, and the curl lines must send it:\n%s", n, out.String())
	}
	if fi, err := os.Stat(cliTokenFile(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cli token file: %v, want mode 0600", err)
	}
	// One write through the gate, so the trail has an entry; without the
	// token it is refused.
	base, _ := readAPIAddr(dir)
	for _, withToken := range []bool{false, true} {
		req, _ := http.NewRequest("POST", base+"/api/v1/write", strings.NewReader(`{"path":"`+demoNamespace+`/speed_setpoint","value":300,"reason":"demo test"}`))
		req.Header.Set("Content-Type", "application/json")
		want := http.StatusUnauthorized
		if withToken {
			req.Header.Set("Authorization", "Bearer "+tok)
			want = http.StatusOK
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("write, token %v: %s, want %d", withToken, resp.Status, want)
		}
	}
	// The web UI's address and login are printed, and the login works.
	m := regexp.MustCompile(`web UI +(http://\S+)/ui/ +user (\S+), password (\S+) `).FindStringSubmatch(out.String())
	if m == nil || m[1] != base || m[2] != "admin" {
		t.Fatalf("no web UI line with %s:\n%s", base, out.String())
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(base+"/ui/login", url.Values{"user": {m[2]}, "password": {m[3]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].Name != "weir_session" {
		t.Errorf("UI login with the printed password: %s %v", resp.Status, resp.Cookies())
	}
	if code, o, e := run("audit", "verify", trail); code != 0 || !strings.Contains(o, "chain intact") || strings.Contains(o, "0 entries") {
		t.Errorf("audit verify: exit %d\n%s%s", code, o, e)
	}
	if code, o, _ := run("buffer", "list", dir); code != 0 || !strings.Contains(o, "in use by a running weir") {
		t.Errorf("buffer list while running: exit %d\n%s", code, o)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}
	// The token it made at start is in the audit trail (the gateway drains
	// the trail's event queue before it stops).
	if data, err := os.ReadFile(trail); err != nil || !strings.Contains(string(data), `"kind":"auth.token_created"`) ||
		!strings.Contains(string(data), `"caller":"demo"`) {
		t.Errorf("the demo's token is not in the audit trail (%v):\n%s", err, data)
	}
	if _, err := os.Stat(filepath.Join(dir, apiAddrFile)); !os.IsNotExist(err) {
		t.Errorf("api address file left after stop: %v", err)
	}
	if code, o, e := run("buffer", "list", dir); code != 0 || !strings.Contains(o, "uns ") || strings.Contains(o, "in use") {
		t.Errorf("buffer list after stop: exit %d\n%s%s", code, o, e)
	}
	if code, _, e := run("alarms", "list", "--data-dir", dir); code != 1 || !strings.Contains(e, "no running gateway") {
		t.Errorf("alarms after stop: exit %d, %s", code, e)
	}
}
