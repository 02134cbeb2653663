package bundle

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func openStore(t *testing.T, dir string, pinned ...*Signer) *Store {
	t.Helper()
	s, err := OpenStore(dir, "s1", trustOf(t, pinned...), StoreOptions{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreApply(t *testing.T) {
	hub := signer(1)
	r1, r2 := rendered(t, "s1", ""), rendered(t, "s1", "log: {level: debug}")
	other := rendered(t, "s2", "")
	failing := errors.New("hot reload refused it")
	tests := []struct {
		name     string
		bundle   *Bundle
		activate error
		err      error
		current  uint64 // version held after the step
	}{
		{name: "first", bundle: issue(t, hub, r1, 1), current: 1},
		{name: "replay", bundle: issue(t, hub, r1, 1), err: ErrAlreadyApplied, current: 1},
		{name: "same version, other content", bundle: issue(t, hub, r2, 1), err: ErrStaleVersion, current: 1},
		{name: "newest wins, skipping versions", bundle: issue(t, hub, r2, 5), current: 5},
		{name: "older version refused (rollback attack)", bundle: issue(t, hub, r1, 4), err: ErrStaleVersion, current: 5},
		{name: "another site's bundle", bundle: issue(t, hub, other, 9), err: ErrWrongSite, current: 5},
		{name: "unknown key", bundle: issue(t, signer(9), r1, 9), err: ErrUnknownKey, current: 5},
		{name: "activation fails: known-good kept", bundle: issue(t, hub, r1, 6), activate: failing, err: failing, current: 5},
		{name: "the same version again after its failure", bundle: issue(t, hub, r1, 6), current: 6},
	}
	dir := t.TempDir()
	s := openStore(t, dir, hub)
	if s.Current() != nil {
		t.Fatal("a new store holds a bundle")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			err := s.Apply(tt.bundle, func(b *Bundle) error {
				called = true
				return tt.activate
			})
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
			if called != (tt.err == nil || tt.activate != nil) {
				t.Errorf("activate called: %v", called)
			}
			if got := s.Current().Version; got != tt.current {
				t.Errorf("current version %d, want %d", got, tt.current)
			}
			// What is on disk is what is held.
			if got := openStore(t, dir, hub).Current().Version; got != tt.current {
				t.Errorf("reopened: version %d, want %d", got, tt.current)
			}
		})
	}
}

// Key rotation survives a restart; a retired key stays retired even if
// still pinned; the known-good bundle signed by the retired key still
// loads (it was trusted when applied) while new ones signed by it do not.
func TestStoreRotationSurvivesReopen(t *testing.T) {
	a, b := signer(1), signer(2)
	dir := t.TempDir()
	s := openStore(t, dir, a)
	if err := s.Apply(issue(t, a, rendered(t, "s1", ""), 1), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Rotate(a.AddKey(b.Public(), t0, t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Rotate(b.RetireKey(a.KeyID, t0)); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, a) // still enrolled with a
	if v := s.Current().Version; v != 1 {
		t.Fatalf("known-good version %d after reopen, want 1", v)
	}
	if err := s.Apply(issue(t, a, rendered(t, "s1", ""), 2), nil); !errors.Is(err, ErrRetiredKey) {
		t.Errorf("bundle from the retired key: %v, want ErrRetiredKey", err)
	}
	if err := s.Apply(issue(t, b, rendered(t, "s1", ""), 2), nil); err != nil {
		t.Errorf("bundle from the new key: %v", err)
	}
	if err := s.Rotate(a.AddKey(a.Public(), t0, t0)); !errors.Is(err, ErrRetiredKey) {
		t.Errorf("rotation signed by the retired key: %v, want ErrRetiredKey", err)
	}
}

func TestStoreOpenRefuses(t *testing.T) {
	hub := signer(1)
	good := issue(t, hub, rendered(t, "s1", ""), 3).Encode()
	tests := []struct {
		name  string
		file  []byte
		msg   string
		noKey bool
	}{
		{name: "damaged known-good", file: append(good[:len(good)-3:len(good)-3], 1, 2, 3), msg: "bad signature"},
		{name: "truncated known-good", file: good[:len(good)/2], msg: "malformed"},
		{name: "another site's known-good", file: issue(t, hub, rendered(t, "s2", ""), 3).Encode(), msg: `for site "s2"`},
		{name: "signed by an unknown key", file: issue(t, signer(7), rendered(t, "s1", ""), 3).Encode(), msg: "unknown key"},
		{name: "no key pinned", noKey: true, msg: "no hub key is pinned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != nil {
				if err := os.WriteFile(filepath.Join(dir, knownGoodFile), tt.file, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			pinned := trustOf(t, hub)
			if tt.noKey {
				pinned = nil
			}
			_, err := OpenStore(dir, "s1", pinned, StoreOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %v, want an error with %q", err, tt.msg)
			}
		})
	}
}

func TestStoreIgnoresLeftoverTemp(t *testing.T) {
	hub := signer(1)
	dir := t.TempDir()
	s := openStore(t, dir, hub)
	if err := s.Apply(issue(t, hub, rendered(t, "s1", ""), 2), nil); err != nil {
		t.Fatal(err)
	}
	// What a crash between CreateTemp and Rename leaves.
	tmp := filepath.Join(dir, "."+knownGoodFile+tmpMark+"123")
	if err := os.WriteFile(tmp, []byte("half a bund"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v := openStore(t, dir, hub).Current().Version; v != 2 {
		t.Errorf("version %d, want 2", v)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("leftover temporary file not removed: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, knownGoodFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("known-good file: %v, mode %v, want 0600", err, fi.Mode())
	}
}

// A process applying bundles as fast as it can is killed (SIGKILL) at a
// random point; the store it leaves opens on a whole, verified bundle at
// least as new as the last one it reported applied.
func TestStoreSurvivesKill(t *testing.T) {
	if os.Getenv("WEIR_BUNDLE_WRITER") != "" {
		return
	}
	hub := signer(1)
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoreWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "WEIR_BUNDLE_WRITER="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The writer prints each version once applied; the scan ends at
		// a version past 20+round*7 or when the writer exits (bounded by
		// its own loop).
		var last uint64
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "applied "), 10, 64); err == nil {
				last = v
				if v >= uint64(20+round*7) {
					break
				}
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if last == 0 {
			t.Fatal("the writer applied nothing")
		}
		s := openStore(t, dir, hub)
		if got := s.Current(); got == nil || got.Version < last {
			t.Fatalf("round %d: after kill, known-good %v, want version ≥ %d", round, got, last)
		}
	}
}

// TestStoreWriterProcess is TestStoreSurvivesKill's child.
func TestStoreWriterProcess(t *testing.T) {
	dir := os.Getenv("WEIR_BUNDLE_WRITER")
	if dir == "" {
		t.Skip("run by TestStoreSurvivesKill")
	}
	hub := signer(1)
	s := openStore(t, dir, hub)
	r := rendered(t, "s1", "")
	for v := uint64(1); v < 100_000; v++ {
		if err := s.Apply(issue(t, hub, r, v), nil); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("applied %d\n", v)
	}
}
