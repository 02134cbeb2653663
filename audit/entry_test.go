package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weir-edge/weir/internal/conf"
)

// TestGoldenReencodes checks that the committed lines, parsed and written
// again, give the same bytes: the optional members added for security
// events must not change how a write entry is encoded (and so hashed).
func TestGoldenReencodes(t *testing.T) {
	for _, file := range []string{"testdata/trail.jsonl", "testdata/keyed.jsonl"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")) {
			e, err := ParseLine(line)
			if err != nil {
				t.Fatalf("%s:%d: %v", file, i+1, err)
			}
			if out := appendLine(nil, &e); !bytes.Equal(out, line) {
				t.Fatalf("%s:%d re-encoded\n%s\nstored\n%s", file, i+1, out, line)
			}
		}
	}
}

func TestEventEntryRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openLog(t, Config{File: path})
	if _, err := l.Append(entry(0)); err != nil {
		t.Fatal(err)
	}
	ev := Entry{Time: t0, Kind: "auth.login_failed", Caller: "api:mallory", Path: "/api/v1/values",
		Remote: "192.0.2.7:51234", Component: "api", Outcome: "failed", Detail: "unknown token", Role: "viewer"}
	got, err := l.Append(ev)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Verify(path); err != nil || n != 2 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	tail, err := l.Tail(2)
	if err != nil {
		t.Fatal(err)
	}
	back := tail[1]
	if back.Kind != ev.Kind || back.Remote != ev.Remote || back.Component != ev.Component || back.Outcome != ev.Outcome ||
		back.Detail != ev.Detail || back.Role != ev.Role || back.Hash != got.Hash || back.Result != "" {
		t.Fatalf("round trip: %+v", back)
	}
	// A write entry carries no optional member it does not use.
	if line, _ := json.Marshal(tail[0]); bytes.Contains(line, []byte(`"kind"`)) || bytes.Contains(line, []byte(`"remote"`)) {
		t.Fatalf("write entry has empty optional members: %s", line)
	}
	// Only non-write entries may go without a result.
	bad := bytes.Replace(appendLine(nil, &tail[0]), []byte(`"result":"allowed"`), []byte(`"result":""`), 1)
	if _, err := ParseLine(bad); err == nil || !strings.Contains(err.Error(), "unknown result") {
		t.Fatalf("write entry without result: %v", err)
	}
}

func TestFreeTextCapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openLog(t, Config{File: path})
	e := entry(0)
	e.Reason = strings.Repeat("r", 60<<10)
	e.Note = strings.Repeat("é", 1000) // 2 bytes each: the cut must not split one
	e.Caller = "mqtt:" + strings.Repeat("u", 5000)
	got, err := l.Append(e)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"reason": got.Reason, "note": got.Note, "caller": got.Caller} {
		if len(s) > MaxText+40 || !strings.Contains(s, "…[cut ") || !utf8.ValidString(s) {
			t.Fatalf("%s not capped: %d bytes, %q…", name, len(s), s[:min(len(s), 40)])
		}
	}
	if !strings.HasSuffix(got.Reason, "…[cut "+itoa(60<<10-MaxText)+" bytes]") {
		t.Fatalf("reason marker: %q", got.Reason[len(got.Reason)-30:])
	}
	st, _ := os.Stat(path)
	if st.Size() > 4*MaxText {
		t.Fatalf("line of %d bytes for a capped entry", st.Size())
	}
	if n, err := Verify(path); err != nil || n != 1 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	short := "short reason"
	if capText(short) != short {
		t.Fatal("short text changed")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestEmptyKeyRefused(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("EMPTY_AUDIT_KEY", "")
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []conf.Secret{{Env: "EMPTY_AUDIT_KEY"}, {File: keyFile}} {
		_, err := Open(Config{File: filepath.Join(dir, "audit.jsonl"), Key: key}, nil)
		if err == nil || !strings.Contains(err.Error(), "resolves to an empty value") {
			t.Fatalf("key %s: err = %v, want a refusal", key, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.jsonl")); err == nil {
		t.Fatal("trail created despite the refusal")
	}
}

// TestTrailFileModes: the trail, its rotated files and the directory
// created for it are the gateway user's alone.
func TestTrailFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	path := filepath.Join(dir, "writes.jsonl")
	l := openLog(t, Config{File: path, MaxBytes: MinMaxBytes})
	for i := range 20 {
		e := entry(i)
		e.Note = strings.Repeat("n", 500)
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) < 2 {
		t.Fatalf("no rotation: %v", files)
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want 0700", dir, st.Mode().Perm())
	}
}
