package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// VerifyChain on a trail that grows and rotates while it is read never
// reports a sound trail broken; once the appends stop it sees every entry
// and the checkpoint.
func TestVerifyChainWhileAppending(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenWith(Config{File: filepath.Join(dir, "audit.jsonl"), MaxBytes: MinMaxBytes, MaxFiles: -1,
		CheckpointFile: filepath.Join(dir, "cp", "checkpoint.json"), CheckpointEvery: 7}, Options{DataDir: dir, Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 400
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if _, err := l.Append(Entry{Time: time.Unix(int64(i), 0), Caller: "api:a", Path: "p/q", New: model.Int(int64(i)), Result: Allowed}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	checks := 0
	for done := false; !done; checks++ {
		done = l.Err() == nil && l.Stats().Checkpoints > 0 && func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.seq == n
		}()
		if _, err := l.VerifyChain(); err != nil {
			t.Fatalf("check %d of a sound trail: %v", checks, err)
		}
	}
	wg.Wait()
	sc, err := l.VerifyChain()
	if err != nil || sc.Entries != n || sc.Checkpoint == nil || len(sc.Files) < 2 {
		t.Fatalf("at rest: %d entries in %d files, checkpoint %v, err %v", sc.Entries, len(sc.Files), sc.Checkpoint, err)
	}
}

// A changed line is found however often it is asked, and a checkpoint
// not signed by the node's key is refused.
func TestVerifyChainFindsTampering(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "audit.jsonl")
	cpFile := filepath.Join(dir, "cp", "checkpoint.json")
	l, err := OpenWith(Config{File: file, CheckpointFile: cpFile, CheckpointEvery: 1}, Options{DataDir: dir, Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 4 {
		if _, err := l.Append(Entry{Time: time.Unix(int64(i), 0), Caller: "api:a", Path: "p/q", New: model.Int(int64(i)), Result: Allowed}); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), `"new":2`, `"new":7`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := l.VerifyChain()
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != 3 || sc.Entries != 2 {
		t.Fatalf("changed line 3: %d intact, err %v", sc.Entries, err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := ReadCheckpointFile(cpFile)
	if err != nil {
		t.Fatal(err)
	}
	cp.Seq = 2 // no longer what was signed
	if err := os.WriteFile(cpFile, cp.JSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.VerifyChain(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged checkpoint: %v", err)
	}
}
