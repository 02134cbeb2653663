package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/gateway"
	"github.com/weir-edge/weir/security"
)

// fakeReloader counts reloads; the second one fails.
type fakeReloader struct {
	mu     sync.Mutex
	actors []string
}

func (f *fakeReloader) Reload(_ context.Context, actor string) (gateway.Applied, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actors = append(f.actors, actor)
	if len(f.actors) == 2 {
		return gateway.Applied{}, errors.New("3 errors")
	}
	return gateway.Applied{Summary: "sources: +plc2"}, nil
}

func (f *fakeReloader) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.actors)
}

// Every SIGHUP reloads (as actor "sighup") and logs the outcome; a failed
// reload is logged and the handler goes on.
func TestReloadOnSignal(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r := &fakeReloader{}
	sig := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); reloadOn(ctx, r, sig, log) }()
	sig <- nil // unbuffered: received once the handler takes it
	sig <- nil // taken once the first reload is done
	sig <- nil
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the handler did not stop")
	}
	if r.count() != 3 || r.actors[0] != "sighup" {
		t.Fatalf("reloads %v", r.actors)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="reload on SIGHUP applied"`) || !strings.Contains(out, "changes=\"sources: +plc2\"") ||
		!strings.Contains(out, `msg="reload on SIGHUP failed; the running configuration stays" err="3 errors"`) {
		t.Fatalf("log:\n%s", out)
	}
}

// weir reload finds the running gateway from its data dir and makes it
// re-read its file; a viewer token is refused; an invalid file is refused
// with its problems and a non-zero exit.
func TestReloadCommand(t *testing.T) {
	dir := t.TempDir()
	text, err := demoConfig("127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:0", "weir-test", dir)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runNamed(ctx, "run", []string{"--log-level", "error", file}, &bytes.Buffer{}, &syncBuffer{})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("weir run: %v", err)
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(dir, apiAddrFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not publish its API address")
		}
		time.Sleep(20 * time.Millisecond) // polling
	}
	store, err := auth.OpenTokens(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[security.Role]string{}
	for _, role := range []security.Role{security.Viewer, security.Engineer} {
		if tokens[role], _, err = store.Create("t-"+string(role), role, time.Hour, ""); err != nil {
			t.Fatal(err)
		}
	}
	reload := func(role security.Role) (string, error) {
		tf := filepath.Join(t.TempDir(), "tok")
		if err := os.WriteFile(tf, []byte(tokens[role]), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		err := runNamed(context.Background(), "reload", []string{"--data-dir", dir, "-token-file", tf}, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if _, err := reload(security.Viewer); err == nil || !strings.Contains(err.Error(), "engineer") {
		t.Fatalf("viewer: %v", err)
	}
	out, err := reload(security.Engineer)
	if err != nil || !strings.Contains(out, "changes: no changes") {
		t.Fatalf("unchanged file: %v\n%s", err, out)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(text, "sinks:", "sinks:\n  - name: \"\"\n    mqtt: {}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = reload(security.Engineer)
	if err == nil || !strings.Contains(out, "line ") || !strings.Contains(out, "sinks[0]") {
		t.Fatalf("invalid file: %v\n%s", err, out)
	}
}
