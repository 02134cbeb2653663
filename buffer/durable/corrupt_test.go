package durable

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
)

// fill creates a store in dir holding samples 1..n and closes it.
func fill(t *testing.T, dir string, n int, flush bool) {
	t.Helper()
	b, err := Open(Config{Dir: dir}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i += 10 { // a WAL record per 10 samples
		push(t, b, mk(time.Unix(1_700_000_000, 0), span(i, min(i+9, n))...))
	}
	if flush {
		if err := b.db.Flush(); err != nil { // into an sstable
			t.Fatal(err)
		}
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
}

func storeFiles(t *testing.T, dir, suffix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil || len(m) == 0 {
		t.Fatalf("no %s file in %s (%v)", suffix, dir, err)
	}
	return m
}

func TestCorruptStore(t *testing.T) {
	tests := []struct {
		name       string
		flush      bool
		damage     func(t *testing.T, dir string)
		quarantine bool  // the store is moved aside
		want       []int // delivered after reopening; nil = don't check
		wantPrefix bool  // want is a prefix of 1..200: anything from 1 on, in order
		corrupt    uint64
	}{
		{"bad record skipped", false, func(t *testing.T, dir string) {
			db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{testLog(t)}})
			if err != nil {
				t.Fatal(err)
			}
			// Records at positions 3 and 7 (samples 4 and 8) damaged, in
			// the middle of their chunk (positions 0..9).
			for _, pos := range []uint64{3, 7} {
				damageRecord(t, db, pos)
			}
			_ = db.Close()
		}, false, append(append(span(1, 3), span(5, 7)...), span(9, 200)...), false, 2},
		{"truncated WAL", false, func(t *testing.T, dir string) {
			for _, f := range storeFiles(t, dir, ".log") {
				st, _ := os.Stat(f)
				if st.Size() > 100 {
					if err := os.Truncate(f, st.Size()-100); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, false, span(1, 190), true, 0},
		{"garbage in sstable", true, func(t *testing.T, dir string) {
			for _, f := range storeFiles(t, dir, ".sst") {
				data, _ := os.ReadFile(f)
				for i := 100; i < 600 && i < len(data); i++ {
					data[i] ^= 0x5a
				}
				_ = os.WriteFile(f, data, 0o644)
			}
		}, true, nil, false, 0},
		{"garbage manifest", false, func(t *testing.T, dir string) {
			for _, f := range storeFiles(t, dir, "") {
				if strings.Contains(filepath.Base(f), "MANIFEST-") {
					_ = os.WriteFile(f, []byte("not a manifest at all"), 0o644)
				}
			}
		}, true, nil, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir() + "/sink"
			fill(t, dir, 200, tt.flush)
			tt.damage(t, dir)
			b := openT(t, Config{Dir: dir}, options{})
			st := b.Stats()
			if (st.Quarantine != "") != tt.quarantine {
				t.Fatalf("quarantine = %q, want moved aside: %v", st.Quarantine, tt.quarantine)
			}
			if tt.quarantine {
				if _, err := os.Stat(st.Quarantine); err != nil {
					t.Fatalf("quarantined store: %v", err)
				}
			}
			if st.DroppedCorrupt != tt.corrupt {
				t.Fatalf("stats = %+v, want dropped_corrupt %d", st, tt.corrupt)
			}
			got := seqs(drainAll(t, b))
			switch {
			case tt.wantPrefix:
				if len(got) == 0 || !slices.Equal(got, span(1, len(got))) || len(got) < len(tt.want) {
					t.Fatalf("delivered %d samples %v…, want 1..n with n >= %d", len(got), got[:min(5, len(got))], len(tt.want))
				}
			case tt.want != nil:
				if !slices.Equal(got, tt.want) {
					t.Fatalf("delivered %v, want %v", got, tt.want)
				}
			default:
				if !slices.Equal(got, span(1, len(got))) {
					t.Fatalf("salvaged %v, want a run from 1", got)
				}
			}
			// The gateway goes on: the store takes new samples.
			push(t, b, mk(time.Unix(1_700_000_000, 0), 500))
			if got := seqs(drainAll(t, b)); !slices.Equal(got, []int{500}) {
				t.Fatalf("after damage, delivered %v, want [500]", got)
			}
		})
	}
}

func TestOpenLockedStore(t *testing.T) {
	dir := t.TempDir() + "/sink"
	b := openT(t, Config{Dir: dir}, options{})
	push(t, b, mk(time.Unix(1_700_000_000, 0), 1, 2))
	if _, err := Open(Config{Dir: dir}, testLog(t)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if m, _ := filepath.Glob(dir + corruptTag + "*"); len(m) != 0 {
		t.Fatalf("a store in use was quarantined: %v", m)
	}
	if st := b.Stats(); st.Depth != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestDiskFull: below the free-space reserve the store is full; drop
// policies count the loss as disk_full, block waits; when space returns,
// samples are stored again. No write ever reaches a full disk, which
// Pebble could not survive.
func TestDiskFull(t *testing.T) {
	tests := []struct {
		policy      buffer.Policy
		wantDropped uint64
	}{
		{buffer.DropNewest, 3},
		{buffer.DropOldest, 3},
		{buffer.Block, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			base := time.Unix(1_700_000_000, 0)
			clock := &fakeClock{t: base}
			var free atomic.Int64
			free.Store(1 << 40)
			b := openT(t, Config{Policy: tt.policy, MinFreeBytes: 1 << 20}, options{
				now: clock.now, free: func() (int64, error) { return free.Load(), nil }, recheck: 5 * time.Millisecond,
			})
			push(t, b, mk(base, 1, 2))
			free.Store(1000) // the disk fills up
			clock.add(time.Second)
			done := make(chan error, 1)
			go func() { done <- b.Push(context.Background(), mk(base, 3, 4, 5)) }()
			if tt.policy == buffer.Block {
				select {
				case err := <-done:
					t.Fatalf("Push on a full disk returned %v, want it to block", err)
				case <-time.After(30 * time.Millisecond):
				}
			} else if err := <-done; err != nil {
				t.Fatalf("Push on a full disk = %v, want nil (dropped, counted)", err)
			}
			st := b.Stats()
			if st.DroppedDiskFull != tt.wantDropped || st.Dropped != tt.wantDropped || st.Depth != 2 {
				t.Fatalf("disk full: stats = %+v, want dropped_disk_full=%d depth=2", st, tt.wantDropped)
			}
			free.Store(1 << 40) // space is back
			clock.add(time.Second)
			if tt.policy == buffer.Block {
				if err := <-done; err != nil {
					t.Fatalf("blocked Push = %v", err)
				}
			}
			push(t, b, mk(base, 6))
			want := []int{1, 2, 6}
			if tt.policy == buffer.Block {
				want = []int{1, 2, 3, 4, 5, 6}
			}
			if got := seqs(drainAll(t, b)); !slices.Equal(got, want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
		})
	}
}

func TestMaxBytes(t *testing.T) {
	big := strings.Repeat("x", 1000)
	mkBig := func(ids ...int) []model.Sample {
		s := mk(time.Unix(1_700_000_000, 0), ids...)
		for i := range s {
			s[i].Value = model.String(big)
		}
		return s
	}
	tests := []struct {
		policy  buffer.Policy
		wantLo  int // first sample held after pushing 1..2000
		wantHi  int
		dropped bool
	}{
		{buffer.DropOldest, 0, 2000, true},
		{buffer.DropNewest, 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			b := openT(t, Config{MaxBytes: 1 << 20, Policy: tt.policy}, options{})
			for i := 1; i <= 2000; i += 100 {
				push(t, b, mkBig(span(i, i+99)...))
			}
			st := b.Stats()
			if st.Bytes > 1<<20 || st.Bytes < 1<<20-2000 {
				t.Fatalf("bytes %d, want close below max_bytes %d", st.Bytes, 1<<20)
			}
			if st.DroppedFull == 0 || st.DroppedFull != st.Dropped || int(st.DroppedFull)+st.Depth != 2000 {
				t.Fatalf("stats = %+v, want dropped_full + depth = 2000", st)
			}
			got := seqs(drainAll(t, b))
			if tt.policy == buffer.DropOldest && got[len(got)-1] != 2000 {
				t.Fatalf("drop_oldest kept %d..%d, want the newest", got[0], got[len(got)-1])
			}
			if tt.policy == buffer.DropNewest && got[0] != 1 {
				t.Fatalf("drop_newest kept %d..%d, want the oldest", got[0], got[len(got)-1])
			}
			if !slices.Equal(got, span(got[0], got[len(got)-1])) {
				t.Fatal("held samples not a contiguous run")
			}
		})
	}
}
