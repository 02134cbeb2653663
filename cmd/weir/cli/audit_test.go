package cli

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
)

func TestAuditVerifyCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "writes.jsonl")
	log, err := audit.Open(audit.Config{File: file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range []audit.Result{audit.Allowed, audit.Denied, audit.Allowed} {
		if _, err := log.Append(audit.Entry{Time: time.Unix(int64(1_800_000_000+i), 0).UTC(), Caller: "api:alice",
			Path: "acme/x/speed", New: model.Int(int64(100 + i)), Result: res}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run("audit", "verify", "-file", file); code != 0 || !strings.Contains(out, "3") {
		t.Fatalf("intact trail: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(data), `"new":101`, `"new":601`, 1)
	if tampered == string(data) {
		t.Fatal("test did not tamper with anything")
	}
	if err := os.WriteFile(file, []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run("audit", "verify", "-file", file)
	if code != 1 || !strings.Contains(errOut, "line 2") {
		t.Fatalf("tampered trail: exit %d, stderr %q; want exit 1 naming line 2", code, errOut)
	}
}

func TestAuditVerifyRotatedTrail(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "writes.jsonl")
	log, err := audit.Open(audit.Config{File: file, MaxBytes: audit.MinMaxBytes, MaxFiles: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if _, err := log.Append(audit.Entry{Time: time.Unix(int64(1_800_000_000+i), 0).UTC(), Caller: "api:alice",
			Path: "acme/x/speed", New: model.Int(int64(i)), Result: audit.Allowed, Note: strings.Repeat("n", 200)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, _ := filepath.Glob(filepath.Join(dir, "writes.*.jsonl"))
	if len(rotated) != 2 {
		t.Fatalf("rotated files %v, want 2 (max_files)", rotated)
	}
	code, out, errOut := run("audit", "verify", "-file", file)
	if code != 0 || !strings.Contains(out, "entries in 3 files") || !strings.Contains(out, "..60)") ||
		!strings.Contains(out, "note: the chain starts at seq") {
		t.Fatalf("intact rotated trail: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	data, err := os.ReadFile(rotated[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	lines[1] = strings.Replace(lines[1], "api:alice", "api:bobby", 1)
	if err := os.WriteFile(rotated[0], []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run("audit", "verify", "-file", file)
	if code != 1 || !strings.Contains(errOut, rotated[0]+": line 2: hash mismatch") {
		t.Fatalf("tampered rotated file: exit %d, stderr %q; want exit 1 naming %s line 2", code, errOut, rotated[0])
	}
}

// checkpointedTrail writes 6 entries to DIR/audit/writes.jsonl with
// checkpoints in DIR/audit-checkpoint and a generated key in DIR, as the
// gateway lays them out.
func checkpointedTrail(t *testing.T) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "audit", "writes.jsonl")
	log, err := audit.OpenWith(audit.Config{File: file, CheckpointFile: audit.CheckpointPath(dir)},
		audit.Options{Node: "n1", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := log.Append(audit.Entry{Time: time.Unix(int64(1_800_000_000+i), 0).UTC(), Caller: "api:alice",
			Path: "acme/x/speed", New: model.Int(int64(100 + i)), Result: audit.Allowed}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

func TestAuditVerifyCheckpoint(t *testing.T) {
	tests := []struct {
		name   string
		attack func(t *testing.T, dir, file string) []string // extra args
		want   string                                        // in stderr; "" = exit 0
	}{
		{"intact", func(*testing.T, string, string) []string { return nil }, ""},
		{"lines cut off the end", func(t *testing.T, _, file string) []string {
			data, _ := os.ReadFile(file)
			lines := strings.SplitAfter(string(data), "\n")
			os.WriteFile(file, []byte(strings.Join(lines[:4], "")), 0o600)
			return nil
		}, "audit trail truncated: the trail ends at seq 4, but the checkpoint of"},
		{"emptied", func(t *testing.T, _, file string) []string {
			os.WriteFile(file, nil, 0o600)
			return nil
		}, "audit trail empty: no entries, but the checkpoint of"},
		{"rewritten", func(t *testing.T, _, file string) []string {
			os.Remove(file)
			l, err := audit.Open(audit.Config{File: file}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 6 {
				l.Append(audit.Entry{Time: time.Unix(int64(1_800_000_000+i), 0).UTC(), Caller: "api:mallory",
					Path: "acme/x/speed", New: model.Int(1), Result: audit.Allowed})
			}
			l.Close()
			return nil
		}, "audit trail rewritten: entry seq 6 has hash"},
		{"checkpoint forged with another key", func(t *testing.T, dir, _ string) []string {
			// The attacker re-signs a checkpoint that matches a shortened
			// trail, but IT holds the real public key.
			pub := run1(t, "audit", "pubkey", "-data-dir", dir)
			os.Remove(filepath.Join(dir, audit.GeneratedKeyName))
			cp, _ := audit.ReadCheckpointFile(audit.CheckpointPath(dir))
			_, other, _ := ed25519.GenerateKey(nil)
			cp.Seq, cp.Hash = 0, audit.Genesis
			cp.Sign(other)
			os.WriteFile(audit.CheckpointPath(dir), cp.JSON(), 0o600)
			return []string{"-pubkey", strings.TrimSpace(pub)}
		}, "bad checkpoint signature: signed by ed25519:"},
		{"checkpoint edited", func(t *testing.T, dir, _ string) []string {
			cp, _ := audit.ReadCheckpointFile(audit.CheckpointPath(dir))
			cp.Seq = 3
			os.WriteFile(audit.CheckpointPath(dir), cp.JSON(), 0o600)
			return nil
		}, "bad checkpoint signature: the checkpoint was changed after it was signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, file := checkpointedTrail(t)
			args := append([]string{"audit", "verify"}, tt.attack(t, dir, file)...)
			code, out, errOut := run(append(args, file)...)
			if tt.want == "" {
				if code != 0 || !strings.Contains(out, "checkpoint: the trail reaches seq 6 of node \"n1\"") {
					t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
				}
				return
			}
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 and %q", code, errOut, tt.want)
			}
		})
	}
}

func TestAuditVerifyPublishedCheckpoints(t *testing.T) {
	dir, file := checkpointedTrail(t)
	pub := strings.TrimSpace(run1(t, "audit", "pubkey", "-data-dir", dir))
	cp, err := audit.ReadCheckpointFile(audit.CheckpointPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	// IT keeps the published events; the second location is gone.
	held := filepath.Join(t.TempDir(), "events.jsonl")
	ev, _ := json.Marshal(map[string]string{"kind": "audit.checkpoint", "detail": string(cp.JSON())})
	os.WriteFile(held, append(ev, '\n'), 0o600)
	os.RemoveAll(filepath.Dir(audit.CheckpointPath(dir)))
	data, _ := os.ReadFile(file)
	os.WriteFile(file, data[:len(data)/2+1][:strings.LastIndex(string(data[:len(data)/2+1]), "\n")+1], 0o600)
	code, _, errOut := run("audit", "verify", "-checkpoint", held, "-pubkey", pub, file)
	if code != 1 || !strings.Contains(errOut, "audit trail truncated") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	// Without any checkpoint the old behaviour holds, with a note.
	code, out, _ := run("audit", "verify", file)
	if code != 0 || !strings.Contains(out, "note: no checkpoint") {
		t.Fatalf("without a checkpoint: exit %d, %s", code, out)
	}
}

// run1 runs a command that must succeed and returns its stdout.
func run1(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := run(args...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errOut)
	}
	return out
}

func TestAuditVerifyCheckpointFromStdin(t *testing.T) {
	dir, file := checkpointedTrail(t)
	data, err := os.ReadFile(audit.CheckpointPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	defer r.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old }()
	code, out, errOut := run("audit", "verify", "-checkpoint", "-", file)
	if code != 0 || !strings.Contains(out, "checkpoint: the trail reaches seq 6") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}
