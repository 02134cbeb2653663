package cli

import (
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
