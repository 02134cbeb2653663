package cli

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/writegate"
)

// nopWriter stands for the demo's PLC: every write succeeds.
type nopWriter struct{ n int }

func (w *nopWriter) WriteTag(context.Context, string, model.Value) (model.Value, error) {
	w.n++
	return model.Int(300), nil
}

// TestDemoForeignCallerCannotStarveAdmin replays the review's attack on
// the demo's configuration (speed_setpoint at 10/min, default
// write_limits): an operator token "mallory" writes as often as it can,
// and the admin's own write still passes.
func TestDemoForeignCallerCannotStarveAdmin(t *testing.T) {
	dir := t.TempDir()
	text, err := demoConfig("127.0.0.1:1", "127.0.0.1:1", "", demoPrefix, dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("demo.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(audit.Config{File: filepath.Join(dir, "writes.jsonl")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	gate, err := writegate.New(cfg.WriteGate, trail, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	gate.SetClock(func() time.Time { return now })
	w := &nopWriter{}
	if err := gate.Register(demoNamespace, w); err != nil {
		t.Fatal(err)
	}
	path := demoNamespace + "/speed_setpoint"
	write := func(caller string, role security.Role) error {
		_, err := gate.Write(context.Background(), writegate.Request{Path: path, Value: model.Int(300), Caller: caller,
			Role: role, Remote: "127.0.0.1:50000", IssuedAt: now})
		return err
	}
	allowed := 0
	for range 30 { // mallory's whole per-caller budget
		if write("api:mallory", security.Operator) == nil {
			allowed++
		}
	}
	if allowed >= 10 {
		t.Fatalf("mallory wrote %d times: the tag's whole 10/min budget", allowed)
	}
	if err := write("api:admin", security.Admin); err != nil {
		t.Fatalf("admin's write after mallory's: %v", err)
	}
	if w.n != allowed+1 {
		t.Fatalf("%d writes reached the plant, want %d", w.n, allowed+1)
	}
}
