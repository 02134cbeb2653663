package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/internal/treehash"
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
			if n := strings.Count(l, `"historical"`); n != 1 {
				t.Fatalf("line %d has the historical key %d times, want once: %s", i, n, l)
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
		for _, args := range [][]string{{"-dir", dir, "-export"}, {"-dir", dir, "-sink", "nope", "-export"}, {"export", dir}, {"purge", "-yes"}} {
			if _, _, err := runBuffer(t, args...); err == nil {
				t.Errorf("%v: want an error", args)
			}
		}
	})
}

func treeSum(t *testing.T, dir string) string {
	t.Helper()
	s, err := treehash.Sum(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// weir buffer pointed at the wrong directory, or used to look, must never
// create or change a byte: every read-only form is run on a directory
// that holds no buffer and on a real one, and the whole tree is compared.
func TestBufferReadOnlyChangesNothing(t *testing.T) {
	notBuffer := t.TempDir()
	os.WriteFile(filepath.Join(notBuffer, "notes.txt"), []byte("keep"), 0o640)
	os.MkdirAll(filepath.Join(notBuffer, "mqtt", "deep"), 0o750)
	os.WriteFile(filepath.Join(notBuffer, "mqtt", "data.bin"), []byte{1, 2, 3}, 0o600)

	data := t.TempDir() // a data dir: DATA/buffers/<sink>
	makeStore(t, filepath.Join(data, "buffers"), "mqtt", 25)
	makeStore(t, filepath.Join(data, "buffers"), "empty", 0)

	type run struct {
		args    []string
		wantErr string // "" = success
	}
	cases := map[string]struct {
		dir  string
		runs []run
	}{
		"not a buffer": {notBuffer, []run{
			{[]string{notBuffer}, "no Weir buffer stores"},
			{[]string{"list", notBuffer}, "no Weir buffer stores"},
			{[]string{"export", notBuffer, "mqtt"}, "no Weir buffer store"},
			{[]string{"export", notBuffer, "nope"}, "no Weir buffer store"},
			{[]string{"-dir", notBuffer, "-sink", "mqtt", "-export"}, "no Weir buffer store"},
			{[]string{"-dir", notBuffer, "-sink", "nope"}, ""}, // one row: "not a buffer store"
			{[]string{"purge", "-yes", notBuffer, "mqtt"}, "no Weir buffer store"},
			{[]string{"purge", "-yes", notBuffer, "nope"}, "no Weir buffer store"},
			{[]string{"-dir", notBuffer, "-sink", "mqtt", "-purge", "-yes"}, "no Weir buffer store"},
		}},
		"a buffer": {data, []run{
			{[]string{data}, ""},
			{[]string{"list", "--data-dir", data}, ""},
			{[]string{"list", filepath.Join(data, "buffers")}, ""},
			{[]string{"-dir", filepath.Join(data, "buffers")}, ""},
			{[]string{"export", data, "mqtt"}, ""},
			{[]string{"export", "--data-dir", data, "empty"}, ""},
			{[]string{"-dir", filepath.Join(data, "buffers"), "-sink", "mqtt", "-export"}, ""},
			{[]string{"purge", data, "mqtt"}, "usage"}, // no terminal, no -yes
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			before := treeSum(t, c.dir)
			for _, r := range c.runs {
				out, errOut, err := runBuffer(t, r.args...)
				switch {
				case r.wantErr == "" && err != nil:
					t.Errorf("%v: %v\n%s", r.args, err, errOut)
				case r.wantErr != "" && (err == nil || !strings.Contains(err.Error(), r.wantErr)):
					t.Errorf("%v: err = %v, want %q\nstdout: %s", r.args, err, r.wantErr, out)
				}
				if after := treeSum(t, c.dir); after != before {
					t.Fatalf("%v changed the directory tree", r.args)
				}
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope")
		for _, args := range [][]string{{missing}, {"export", missing, "mqtt"}, {"purge", "-yes", missing, "mqtt"}} {
			if _, _, err := runBuffer(t, args...); err == nil {
				t.Errorf("%v: want an error", args)
			}
			if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%v created %s", args, missing)
			}
		}
	})
}

func TestBufferPurgeConfirms(t *testing.T) {
	old := confirmInput
	defer func() { confirmInput = old }()
	data := t.TempDir()
	makeStore(t, filepath.Join(data, "buffers"), "mqtt", 5)
	before := treeSum(t, data)
	for _, tt := range []struct {
		name   string
		answer string
		tty    bool
	}{
		{"not a terminal", "mqtt\n", false},
		{"wrong answer", "yes\n", true},
		{"no answer", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			confirmInput = func() (io.Reader, bool) { return strings.NewReader(tt.answer), tt.tty }
			if _, _, err := runBuffer(t, "purge", data, "mqtt"); !errors.Is(err, errUsage) {
				t.Fatalf("purge = %v, want refused", err)
			}
			if treeSum(t, data) != before {
				t.Fatal("a refused purge changed the store")
			}
		})
	}
	t.Run("confirmed", func(t *testing.T) {
		confirmInput = func() (io.Reader, bool) { return strings.NewReader("mqtt\n"), true }
		_, errOut, err := runBuffer(t, "purge", data, "mqtt")
		if err != nil || !strings.Contains(errOut, "Type the sink name") || !strings.Contains(errOut, "purged 5") {
			t.Fatalf("purge = %v, stderr %q", err, errOut)
		}
	})
}
