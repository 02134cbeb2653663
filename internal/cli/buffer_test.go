package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/model"
)

// makeStore creates the store of sink under dir holding n samples.
func makeStore(t *testing.T, dir, sink string, n int) {
	t.Helper()
	b, err := durable.Open(durable.Config{Dir: filepath.Join(dir, sink)}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s := make([]model.Sample, n)
	for i := range s {
		s[i] = model.Sample{Path: "plant/a/t" + string(rune('0'+i%10)), Value: model.Int(int64(i)), Seq: uint64(i + 1), EdgeTime: 1}
	}
	if n > 0 {
		if err := b.Push(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
}

func runBuffer(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runNamed(context.Background(), "buffer", args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestBufferCmd(t *testing.T) {
	dir := t.TempDir()
	makeStore(t, dir, "mqtt", 25)
	makeStore(t, dir, "empty", 0)

	t.Run("list", func(t *testing.T) {
		out, _, err := runBuffer(t, "-dir", dir)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[1], "empty ") || !strings.HasPrefix(lines[2], "mqtt ") {
			t.Fatalf("list =\n%s", out)
		}
		if f := strings.Fields(lines[2]); f[1] != "25" || f[2] == "0" {
			t.Fatalf("mqtt line %q, want 25 samples and some bytes", lines[2])
		}
	})
	t.Run("export", func(t *testing.T) {
		out, _, err := runBuffer(t, "-dir", dir, "-sink", "mqtt", "-export")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 25 {
			t.Fatalf("exported %d lines, want 25", len(lines))
		}
		for i, l := range lines {
			var v struct {
				Path       string `json:"path"`
				Seq        uint64 `json:"seq"`
				Historical bool   `json:"historical"`
			}
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("line %d %q: %v", i, l, err)
			}
			if v.Seq != uint64(i+1) || !v.Historical || !strings.HasPrefix(v.Path, "plant/a/") {
				t.Fatalf("line %d = %+v", i, v)
			}
		}
	})
	t.Run("purge needs -yes", func(t *testing.T) {
		if _, _, err := runBuffer(t, "-dir", dir, "-sink", "mqtt", "-purge"); !errors.Is(err, errUsage) {
			t.Fatalf("purge without -yes = %v, want usage error", err)
		}
	})
	t.Run("in use", func(t *testing.T) {
		b, err := durable.Open(durable.Config{Dir: filepath.Join(dir, "mqtt")}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Release()
		if _, _, err := runBuffer(t, "-dir", dir, "-sink", "mqtt", "-purge", "-yes"); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("purge of a held store = %v, want in use", err)
		}
		out, _, _ := runBuffer(t, "-dir", dir)
		if !strings.Contains(out, "in use by a running weir") {
			t.Fatalf("list =\n%s", out)
		}
	})
	t.Run("purge", func(t *testing.T) {
		if _, errOut, err := runBuffer(t, "-dir", dir, "-sink", "mqtt", "-purge", "-yes"); err != nil || !strings.Contains(errOut, "purged 25") {
			t.Fatalf("purge = %v %q", err, errOut)
		}
		out, _, _ := runBuffer(t, "-dir", dir, "-sink", "mqtt")
		if f := strings.Fields(strings.Split(out, "\n")[1]); f[1] != "0" {
			t.Fatalf("after purge:\n%s", out)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{nil, {"-dir", dir, "-export"}, {"-dir", dir, "-sink", "nope", "-export"}} {
			if _, _, err := runBuffer(t, args...); err == nil {
				t.Errorf("%v: want an error", args)
			}
		}
	})
}
