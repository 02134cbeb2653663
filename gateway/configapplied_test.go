package gateway

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/config"
)

// config.applied names the file by its absolute path, wherever weir was
// started from, and the hash of exactly its bytes; a reload adds what
// changed; the demo's record names it built in.
func TestConfigAppliedEvent(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	rc := newRunningConfig(&config.Config{}, "gw.yaml", []byte("x"), time.Now())
	ev := configAppliedEvent(rc, "cli", "n", "")
	if want := filepath.Join(dir, "gw.yaml"); ev.Object != want {
		t.Fatalf("object %q, want %q", ev.Object, want)
	}
	// sha256("x")
	if want := "sha256 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881, node n"; ev.Detail != want {
		t.Fatalf("detail %q, want %q", ev.Detail, want)
	}
	ev = configAppliedEvent(newRunningConfig(&config.Config{}, "", nil, time.Now()), "api:eve", "n", "sources: +plc2")
	if ev.Object != builtIn || ev.Actor != "api:eve" || !strings.HasSuffix(ev.Detail, ", changes: sources: +plc2") {
		t.Fatalf("built in: %+v", ev)
	}
}
