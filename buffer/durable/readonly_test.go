package durable

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/weir-edge/weir/internal/treehash"
	"github.com/weir-edge/weir/model"
)

func sumT(t *testing.T, dir string) string {
	t.Helper()
	s, err := treehash.Sum(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeWithAckedHead leaves a store holding samples 5..10 of 10 pushed: 4
// acked (so a heads marker cuts the first chunk), the rest in the WAL.
func storeWithAckedHead(t *testing.T, dir string) {
	t.Helper()
	b, err := Open(Config{Dir: dir}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	s := make([]model.Sample, 10)
	for i := range s {
		s[i] = model.Sample{Path: "a/b", Value: model.Int(int64(i + 1)), Seq: uint64(i + 1), EdgeTime: 1}
	}
	if err := b.Push(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	batch, err := b.Next(context.Background(), 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(batch); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenReadOnlyWritesNothing(t *testing.T) {
	t.Run("store", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "sink")
		storeWithAckedHead(t, dir)
		before := sumT(t, dir)
		b, err := OpenReadOnly(dir, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		if st := b.Stats(); st.Depth != 6 {
			t.Errorf("depth %d, want 6", st.Depth)
		}
		var got []int64
		if err := b.Each(func(s model.Sample) error { got = append(got, s.Value.AsInt()); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 6 || got[0] != 5 || got[5] != 10 {
			t.Errorf("Each = %v, want 5..10", got)
		}
		if err := b.Push(context.Background(), []model.Sample{{Path: "a/b", Value: model.Int(1)}}); !errors.Is(err, errReadOnly) {
			t.Errorf("Push = %v", err)
		}
		if _, err := b.Purge(); !errors.Is(err, errReadOnly) {
			t.Errorf("Purge = %v", err)
		}
		if err := b.Release(); err != nil {
			t.Fatal(err)
		}
		if after := sumT(t, dir); after != before {
			t.Error("a read-only open changed the store")
		}
		// A writable open still finds the same six.
		w, err := Open(Config{Dir: dir}, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Release()
		if d := w.Stats().Depth; d != 6 {
			t.Errorf("depth after reopen %d", d)
		}
	})
	t.Run("in use", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "sink")
		storeWithAckedHead(t, dir)
		w, err := Open(Config{Dir: dir}, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Release()
		if _, err := OpenReadOnly(dir, testLog(t)); !errors.Is(err, ErrLocked) {
			t.Errorf("OpenReadOnly of a held store = %v, want ErrLocked", err)
		}
	})

	notStores := map[string]func(t *testing.T, dir string){
		"empty directory": func(t *testing.T, dir string) {},
		"other files": func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("keep me"), 0o600)
			os.Mkdir(filepath.Join(dir, "sub"), 0o700)
		},
		"pebble store, not weir's": func(t *testing.T, dir string) {
			db, err := pebble.Open(dir, &pebble.Options{})
			if err != nil {
				t.Fatal(err)
			}
			db.Set([]byte("k"), []byte("v"), pebble.Sync)
			db.Close()
			os.WriteFile(filepath.Join(dir, lockName), nil, 0o644)
		},
	}
	for name, setup := range notStores {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			setup(t, dir)
			before := sumT(t, dir)
			if _, err := OpenReadOnly(dir, testLog(t)); !errors.Is(err, ErrNotStore) {
				t.Errorf("OpenReadOnly = %v, want ErrNotStore", err)
			}
			if after := sumT(t, dir); after != before {
				t.Error("OpenReadOnly changed a directory that is no store")
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		if _, err := OpenReadOnly(dir, testLog(t)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("OpenReadOnly = %v, want not exist", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Error("OpenReadOnly created the directory")
		}
	})
}
