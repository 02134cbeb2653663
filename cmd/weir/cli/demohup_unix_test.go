//go:build unix

package cli

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weir-edge/weir/config"
)

// A gateway from no file (the demo) survives SIGHUP: it applies its own
// configuration again, a logged no-op, and keeps running (before, the
// signal's default action ended the process, api.url left behind).
func TestDemoSurvivesSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	text, err := demoConfig("127.0.0.1:1", "127.0.0.1:1", ln.Addr().String(), demoPrefix, dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("demo.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan struct{})
	log := slog.New(signalHandler{Handler: testLogger(t).Handler(), msg: "reload on SIGHUP applied", once: &sync.Once{}, ready: reloaded})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runGateway(ctx, cfg, ln, log) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()
	waitFile(t, filepath.Join(dir, apiAddrFile), done)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloaded:
	case err := <-done:
		t.Fatalf("the gateway ended on SIGHUP: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("SIGHUP was not handled")
	}
}
