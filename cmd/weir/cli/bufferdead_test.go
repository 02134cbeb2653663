package cli

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/model"
)

// makeDead dead-letters n samples of sink under cause, as the engine does.
func makeDead(t *testing.T, dir, sink, cause string, n int) {
	t.Helper()
	d, err := durable.OpenDeadLetters(durable.DeadLetterDir(filepath.Join(dir, sink)), 0, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s := make([]model.Sample, n)
	for i := range s {
		s[i] = model.Sample{Path: "plant/bad\xffname", Value: model.Int(int64(100 + i)), Seq: uint64(100 + i), EdgeTime: 1}
	}
	if err := d.Put(context.Background(), cause, s); err != nil {
		t.Fatal(err)
	}
	if err := d.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestBufferDeadAndReplay(t *testing.T) {
	dir := t.TempDir()
	makeStore(t, dir, "mqtt", 5)
	makeDead(t, dir, "mqtt", "invalid_name", 2)
	makeDead(t, dir, "mqtt", "malformed", 1)

	t.Run("list leaves dead letters out of the stores", func(t *testing.T) {
		out, _, err := runBuffer(t, "list", dir)
		if err != nil || strings.Contains(out, ".dead") || !strings.Contains(out, "mqtt ") {
			t.Fatalf("list = %v\n%s", err, out)
		}
	})
	t.Run("dead", func(t *testing.T) {
		out, _, err := runBuffer(t, "dead", dir, "mqtt")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || strings.Fields(lines[1])[0] != "invalid_name" || strings.Fields(lines[1])[1] != "2" ||
			strings.Fields(lines[2])[0] != "malformed" || strings.Fields(lines[2])[1] != "1" {
			t.Fatalf("dead =\n%s", out)
		}
	})
	t.Run("dead -export", func(t *testing.T) {
		out, errOut, err := runBuffer(t, "dead", "-export", dir, "mqtt")
		if err != nil || !strings.Contains(errOut, "exported 3 dead letters") {
			t.Fatalf("export = %v %q", err, errOut)
		}
		var causes []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var v struct {
				Cause string `json:"cause"`
				Path  string `json:"path"`
				Seq   uint64 `json:"seq"`
			}
			if err := json.Unmarshal([]byte(l), &v); err != nil || v.Seq < 100 || !strings.HasPrefix(v.Path, "plant/bad") {
				t.Fatalf("line %q: %+v %v", l, v, err)
			}
			causes = append(causes, v.Cause)
		}
		if strings.Join(causes, ",") != "invalid_name,invalid_name,malformed" {
			t.Fatalf("causes %v", causes)
		}
	})
	t.Run("replay refuses while the gateway runs", func(t *testing.T) {
		b, err := durable.Open(durable.Config{Dir: filepath.Join(dir, "mqtt")}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Release()
		if _, _, err := runBuffer(t, "replay", "-yes", dir, "mqtt"); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("replay of a held store = %v, want in use", err)
		}
	})
	t.Run("replay needs -yes", func(t *testing.T) {
		if _, _, err := runBuffer(t, "replay", dir, "mqtt"); !errors.Is(err, errUsage) {
			t.Fatalf("replay without -yes = %v, want usage error", err)
		}
	})
	t.Run("replay one cause", func(t *testing.T) {
		if _, errOut, err := runBuffer(t, "replay", "-yes", "-cause", "malformed", dir, "mqtt"); err != nil || !strings.Contains(errOut, "replayed 1 dead letters (malformed)") {
			t.Fatalf("replay = %v %q", err, errOut)
		}
	})
	t.Run("replay", func(t *testing.T) {
		if _, errOut, err := runBuffer(t, "replay", "-yes", dir, "mqtt"); err != nil || !strings.Contains(errOut, "replayed 2 dead letters (invalid_name)") {
			t.Fatalf("replay = %v %q", err, errOut)
		}
		out, _, _ := runBuffer(t, "export", dir, "mqtt")
		if n := strings.Count(out, "\n"); n != 8 || !strings.Contains(out, `"seq":100`) || !strings.Contains(out, `"seq":101`) {
			t.Fatalf("buffer after replay (%d lines):\n%s", n, out)
		}
		out, _, _ = runBuffer(t, "dead", dir, "mqtt")
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			if strings.Fields(l)[1] != "0" {
				t.Fatalf("dead letters left after replay:\n%s", out)
			}
		}
	})
}
