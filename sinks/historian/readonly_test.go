package historian

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// TestUnwritableDirFailsConnect: a historian directory the process cannot
// write fails Connect with the directory and the cause, instead of
// connecting and failing every write with SQLite's "unable to open
// database file (14)". The real file mode is tried when not root (root
// writes anyway); the probe is replaced to cover it under root too.
func TestUnwritableDirFailsConnect(t *testing.T) {
	ctx := context.Background()
	t.Run("real mode", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into a read-only directory")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		s, err := New(Config{Dir: dir}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Connect(ctx)
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("Connect = %v, want the directory and permission denied", err)
		}
	})
	t.Run("probe", func(t *testing.T) {
		dir := t.TempDir()
		s, err := New(Config{Dir: dir}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.probe = func(d string) error {
			return &fs.PathError{Op: "open", Path: filepath.Join(d, ".weir-write-probe-1"), Err: syscall.EACCES}
		}
		err = s.Connect(ctx)
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not writable") || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("Connect = %v, want the directory, not writable, permission denied", err)
		}
		if s.Store() != nil {
			t.Fatal("store left open after a failed Connect")
		}
	})
}

// TestWriteNamesUnopenableDayFile: when SQLite cannot open a day file the
// error names the file and, when it can tell, why.
func TestWriteNamesUnopenableDayFile(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir}, time.Unix(0, day0+dayNs/2))
	p := s.Store().path(dayOf(day0))
	if err := os.Mkdir(p, 0o700); err != nil { // in the way, even for root
		t.Fatal(err)
	}
	err := s.Write(context.Background(), []model.Sample{{Path: "a/x", Value: model.Float(1), SourceTime: day0}})
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "a directory is in the way") {
		t.Fatalf("Write = %v, want the day file and the cause", err)
	}
}
