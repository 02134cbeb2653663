package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// signalWriter collects what a long-running command prints and says when
// its banner is complete.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
	until string
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.until) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

// TestHubCommands runs `weir hub run` and drives it with the other
// actions the way an operator does.
func TestHubCommands(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &signalWriter{ready: make(chan struct{}), until: "TLS CA"}
	done := make(chan error, 1)
	go func() {
		done <- runNamed(ctx, "hub", []string{"run", "-data-dir", dir, "-listen", "127.0.0.1:0", "-tls-auto", "-log-level", "error"}, out, &bytes.Buffer{})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hub run: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Error("hub run did not stop within 2 min of its context")
		}
	}()
	select {
	case <-out.ready:
	case err := <-done:
		t.Fatalf("hub run ended: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("hub run printed no banner within 2 min")
	}
	out.mu.Lock()
	banner := out.buf.String()
	out.mu.Unlock()
	if !strings.Contains(banner, "TLS CA (sites pin it)") {
		t.Errorf("banner lacks the CA:\n%s", banner)
	}
	run := func(args ...string) (string, error) {
		var o, e bytes.Buffer
		err := runNamed(ctx, "hub", append(args, "-data-dir", dir), &o, &e)
		return o.String() + e.String(), err
	}
	if got, err := run("token", "-site", "s1", "-groups", "eu"); err != nil || !strings.HasPrefix(got, "weirenroll_") {
		t.Fatalf("token: %q %v", got, err)
	}
	base := "../../../fleet/hub/testdata/base.yaml"
	if got, err := run("publish", "-layer", "base", "-file", base); err != nil || !strings.Contains(got, "s1\tversion 1") {
		t.Fatalf("publish: %q %v", got, err)
	}
	bad := filepath.Join(dir, "eu.yaml")
	if err := os.WriteFile(bad, []byte("log:\n  level: loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := run("publish", "-layer", "group:eu", "-file", bad); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Fatalf("invalid layer: %q %v, want refused naming log.level", got, err)
	}
	if got, err := run("site"); err != nil || !strings.Contains(got, "s1\tgroups=eu\tversion=1") {
		t.Fatalf("site list: %q %v", got, err)
	}
	if got, err := run("keys", "rotate"); err != nil || !strings.HasPrefix(got, "ed25519:") {
		t.Fatalf("keys rotate: %q %v", got, err)
	}
	got, err := run("audit")
	if err != nil || !strings.Contains(got, `"action":"publish.refused"`) || !strings.Contains(got, "hash chain intact") {
		t.Fatalf("audit: %q %v", got, err)
	}
}
