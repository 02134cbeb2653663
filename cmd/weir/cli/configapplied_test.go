package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/gateway"
)

// TestGatewayRecordsConfigApplied: a gateway start appends config.applied
// (file and SHA-256 of its bytes) to the audit trail through the event
// recorder, and leaves a signed checkpoint that `weir audit verify`
// checks the trail against.
func TestGatewayRecordsConfigApplied(t *testing.T) {
	dir := t.TempDir()
	// No simulator or broker answers: the gateway starts and retries.
	text, err := demoConfig("127.0.0.1:1", "127.0.0.1:1", "", "weir-test", dir)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // runs up to the start, then stops at once: what was recorded is drained
	g, err := gateway.New(cfg, gateway.Options{Logger: testLogger(t), ConfigPath: file, ConfigData: []byte(text)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	trail := filepath.Join(dir, "audit", "writes.jsonl")
	l, err := audit.Open(audit.Config{File: trail}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := l.Tail(10)
	l.Close()
	if len(tail) != 1 {
		t.Fatalf("trail %+v, want the config.applied entry", tail)
	}
	e := tail[0]
	if e.Kind != "config.applied" || e.Path != file || !strings.HasPrefix(e.Detail, "sha256 ") || e.Outcome != "ok" {
		t.Fatalf("entry %+v", e)
	}
	for _, p := range []string{audit.CheckpointPath(dir), filepath.Join(dir, audit.GeneratedKeyName)} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want 0600", p, err)
		}
	}
	out := run1(t, "audit", "verify", trail)
	if !strings.Contains(out, "checkpoint: the trail reaches seq 1") {
		t.Fatalf("verify: %s", out)
	}
}
