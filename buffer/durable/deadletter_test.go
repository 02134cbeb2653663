package durable

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
)

var _ engine.DeadLetters = (*DeadLetters)(nil)

func deadSamples(from, n int) []model.Sample {
	s := make([]model.Sample, n)
	for i := range s {
		s[i] = model.Sample{Path: "bad\xffname", Value: model.Int(int64(from + i)), Seq: uint64(from + i), EdgeTime: 1}
	}
	return s
}

// Dead letters are kept per cause in ordinary stores that survive a
// reopen; nothing is created before the first one; each cause's store is
// bounded and drops its oldest, counted.
func TestDeadLetters(t *testing.T) {
	old := deadMaxSamples
	deadMaxSamples = 10
	t.Cleanup(func() { deadMaxSamples = old })
	dir := filepath.Join(t.TempDir(), "mqtt"+DeadLetterSuffix)

	d, err := OpenDeadLetters(dir, 0, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("OpenDeadLetters created %s before any dead letter (%v)", dir, err)
	}
	ctx := context.Background()
	if err := d.Put(ctx, "invalid_name", deadSamples(1, 3)); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "malformed", deadSamples(100, 12)); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "../escape", deadSamples(1, 1)); err == nil {
		t.Fatal("Put accepted a cause that is not a plain name")
	}
	if st := d.Stats(); st["malformed"].Depth != 10 || st["malformed"].Dropped != 2 {
		t.Fatalf("stats %+v, want 10 held and 2 of malformed dropped (bounded, drop oldest)", st["malformed"])
	}
	if err := d.Release(); err != nil {
		t.Fatal(err)
	}

	d, err = OpenDeadLetters(dir, 0, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	st := d.Stats()
	if st["invalid_name"].Depth != 3 || st["malformed"].Depth != 10 || len(st) != 2 {
		t.Fatalf("stats after reopen %+v, want 3 and 10 held", st)
	}
	if causes, err := DeadLetterCauses(dir); err != nil || fmt.Sprint(causes) != "[invalid_name malformed]" {
		t.Fatalf("causes %v %v", causes, err)
	}
	d.mu.Lock()
	b := d.stores["malformed"]
	d.mu.Unlock()
	var seqs []uint64
	if err := b.Each(func(s model.Sample) error { seqs = append(seqs, s.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs) != "[102 103 104 105 106 107 108 109 110 111]" {
		t.Fatalf("held %v, want the newest 10 (drop oldest)", seqs)
	}
}

// The dead letters sit on the sink buffer's volume and keep its reserve:
// with the 64 MiB default on a small volume every dead letter was dropped
// while the sink's own min_free_bytes allowed it.
func TestDeadLettersKeepTheSinksReserve(t *testing.T) {
	for _, minFree := range []int64{0, 4 << 20} {
		d, err := OpenDeadLetters(t.TempDir(), minFree, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.store("oversize")
		if err != nil {
			t.Fatal(err)
		}
		want := minFree
		if want == 0 {
			want = DefaultMinFreeBytes
		}
		if b.cfg.MinFreeBytes != want {
			t.Errorf("min_free_bytes %d: the store keeps %d", minFree, b.cfg.MinFreeBytes)
		}
		if err := d.Release(); err != nil {
			t.Fatal(err)
		}
	}
}
