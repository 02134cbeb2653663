package gateway

import (
	"fmt"
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
	ev := configAppliedEvent(rc, "cli", "n", nil)
	if want := filepath.Join(dir, "gw.yaml"); ev.Object != want {
		t.Fatalf("object %q, want %q", ev.Object, want)
	}
	// sha256("x")
	if want := "sha256 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881, node n"; ev.Detail != want {
		t.Fatalf("detail %q, want %q", ev.Detail, want)
	}
	d := config.Diff{Sources: config.ComponentDiff{Added: []string{"plc2"}}}
	ev = configAppliedEvent(newRunningConfig(&config.Config{}, "", nil, time.Now()), "api:eve", "n",
		&Applied{Diff: d, Summary: d.String()})
	if ev.Object != builtIn || ev.Actor != "api:eve" || !strings.HasSuffix(ev.Detail, ", changes: sources: +plc2; diff: source plc2 added") {
		t.Fatalf("built in: %+v", ev)
	}
}

// The diff lines in config.applied are bounded: 64 lines and 4 KiB at
// most, then how many more there were.
func TestConfigAppliedDiffBounded(t *testing.T) {
	var d config.Diff
	for i := range 200 {
		d.Sources.Added = append(d.Sources.Added, fmt.Sprintf("source-with-a-long-name-%03d", i))
	}
	d.Restart = []string{"http"}
	ev := configAppliedEvent(newRunningConfig(&config.Config{}, "", nil, time.Now()), "cli", "n",
		&Applied{Diff: d, Summary: "many", Restart: []string{"http"}})
	if !strings.Contains(ev.Detail, "source source-with-a-long-name-063 added; … 137 more") ||
		strings.Contains(ev.Detail, "name-064") || !strings.HasSuffix(ev.Detail, "; restart needed for: http") {
		t.Fatalf("detail %q", ev.Detail)
	}
	if len(ev.Detail) > 6<<10 {
		t.Fatalf("detail of %d bytes", len(ev.Detail))
	}
	lines := make([]string, 100)
	for i := range lines {
		lines[i] = strings.Repeat("x", 100)
	}
	if got := boundLines(lines, 64, 4<<10); len(got) != 41 || got[40] != "… 60 more" {
		t.Fatalf("by bytes: %d lines, last %q", len(got), got[len(got)-1])
	}
}
