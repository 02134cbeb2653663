package gateway

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/weir-edge/weir/security"
)

// The probe finds a writable directory writable and leaves nothing behind.
func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	if err := checkWritable(filepath.Join(dir, "weir.yaml")); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the probe left %v", left)
	}
	if err := checkWritable(filepath.Join(dir, "missing", "weir.yaml")); err == nil {
		t.Fatal("a missing directory is writable")
	}
}

// An API apply to a file on a read-only file system (the systemd unit's
// ProtectSystem=strict) is refused before anything changes, in words
// that name the file, why and both ways out; with persist=false it runs,
// the file stays, and the result and the audit say "not persisted".
func TestApplyReadOnlyFile(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "out", "spare")
	g, events, _ := startFromFile(t, dir, text)
	file := filepath.Join(dir, "weir.yaml")
	orig := checkWritable
	checkWritable = func(path string) error {
		return &fs.PathError{Op: "open", Path: filepath.Join(filepath.Dir(path), ".weir-write-check-1"), Err: syscall.EROFS}
	}
	t.Cleanup(func() { checkWritable = orig })

	smaller := offlineConfig(t, dir, plc, "out")
	res, err := (configManager{g}).Apply(context.Background(), []byte(smaller), "api:eve", true)
	if !errors.Is(err, ErrNotPersistable) || res.Applied {
		t.Fatalf("apply = %+v, %v; want ErrNotPersistable", res, err)
	}
	for _, want := range []string{file, "read-only file system", "ProtectSystem=strict", "ReadWritePaths=" + dir, "persist=false", "nothing was applied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the message %q does not say %q", err, want)
		}
	}
	if _, ok := sinkStatus(g.Engine(), "spare"); !ok {
		t.Fatal("sink spare stopped although nothing was applied")
	}
	if ev := events.Last(security.ConfigApplied); ev.Outcome != "refused" {
		t.Fatalf("refusal event %+v", ev)
	}

	res, err = (configManager{g}).Apply(context.Background(), []byte(smaller), "api:eve", false)
	if err != nil || !res.Applied || !res.NotPersisted || res.Summary != "sinks: -spare" {
		t.Fatalf("apply persist=false = %+v, %v", res, err)
	}
	if data, _ := os.ReadFile(file); string(data) != text {
		t.Fatal("persist=false rewrote the file")
	}
	if _, err := os.Stat(file + ".prev"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a .prev was written: %v", err)
	}
	if ev := events.Last(security.ConfigApplied); ev.Outcome != "ok" || !strings.Contains(ev.Detail, "not persisted: "+file) {
		t.Fatalf("applied event %+v", ev)
	}
	if _, ok := sinkStatus(g.Engine(), "spare"); ok {
		t.Fatal("sink spare still runs")
	}
}
