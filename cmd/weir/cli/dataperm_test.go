//go:build unix

package cli

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A gateway keeps everything it creates under its data dir private to its
// user: files 0600, directories 0700, whatever mode the library creating
// them asked for (Pebble asks for 0644/0755) and whatever umask it was
// started with; a data dir others may enter is warned about.
func TestDataDirPrivate(t *testing.T) {
	// The most permissive umask, so that only Weir's own umask and modes
	// can make the files private.
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runNamed(ctx, "run", []string{"--data-dir", dir, "--http-listen", "127.0.0.1:0",
			"--broker-listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0", "--log-level", "warn"}, &out, &errOut)
	}()
	waitFile(t, filepath.Join(dir, apiAddrFile), done)

	// Exercise the gateway: a write (audit trail) and a shelved alarm
	// (alarm state). Their outcome is not this test's business: only the
	// files they leave behind.
	if base, err := readAPIAddr(dir); err == nil {
		if resp, err := http.Post(base+"/api/v1/write", "application/json",
			strings.NewReader(`{"path":"`+demoNamespace+`/speed_setpoint","value":300,"reason":"test"}`)); err == nil {
			resp.Body.Close()
		}
	}
	var o, e bytes.Buffer
	if err := runNamed(ctx, "alarms", []string{"shelve", "-for", "1m", "--data-dir", dir, "filler_high_vibration"}, &o, &e); err != nil {
		t.Logf("alarms shelve: %v %s", err, e.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}

	if !strings.Contains(errOut.String(), "data directory is accessible by other users") || !strings.Contains(errOut.String(), "0755") {
		t.Errorf("no warning about the 0755 data dir in:\n%s", errOut.String())
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir { // the data dir itself is the user's to choose
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s is mode %04o: others may read it", rel, perm)
		}
		if !d.IsDir() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The walk saw the buffer's Pebble files and the audit trail, or it
	// proved nothing.
	for _, want := range []string{filepath.Join("audit", "writes.jsonl")} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("the gateway left no %s: %v", want, err)
		}
	}
	if files < 5 {
		t.Errorf("only %d files under the data dir: the gateway was not exercised", files)
	}
	t.Logf("%d files checked", files)
}

// The offline tools that rewrite a store (buffer purge, as root more often
// than not) leave private files too: every weir command runs with umask
// 0077.
func TestBufferPurgePrivate(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "uns")
	makeStore(t, dir, "uns", 10)
	// Private before the command, so a file with other bits after it is
	// one the command created.
	walkModes(t, store, func(path string, fi fs.FileInfo) {
		mode := os.FileMode(0o600)
		if fi.IsDir() {
			mode = 0o700
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	})
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	if code, _, errOut := run("buffer", "purge", "-yes", dir, "uns"); code != 0 {
		t.Fatalf("purge: exit %d: %s", code, errOut)
	}
	if got := syscall.Umask(0); got != 0 {
		t.Errorf("umask after the command %04o, want the caller's (0) back", got)
	}
	walkModes(t, store, func(path string, fi fs.FileInfo) {
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s is mode %04o after purge", path, perm)
		}
	})
}

// walkModes calls f for dir and everything under it.
func walkModes(t *testing.T, dir string, f func(path string, fi fs.FileInfo)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		f(path, fi)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
