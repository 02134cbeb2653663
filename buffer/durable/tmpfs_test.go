//go:build linux

package durable

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDiskFullHealsOnTmpfs is issue 11's incident end to end on a real,
// small filesystem with the real Pebble store, probe and clock: a 24 MiB
// tmpfs fills while the sink is away (disk_full), the sink comes back and
// acks everything, and live samples are accepted again and the store
// shrinks on disk, without a restart. It asserts behaviour with generous
// deadlines and logs the times measured. It needs root to mount the tmpfs
// and is skipped otherwise.
func TestDiskFullHealsOnTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the disk-full test on a real tmpfs")
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: skipping the disk-full test on a real 24 MiB tmpfs (run the tests as root to include it)")
	}
	vol := t.TempDir()
	if err := syscall.Mount("tmpfs", vol, "tmpfs", 0, "size=24m"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): skipping the disk-full test on a real filesystem", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(vol, 0); err != nil {
			t.Errorf("unmount %s: %v", vol, err)
		}
	})
	const minFree = 4 << 20
	var (
		mu       sync.Mutex
		reclaims []reclaimed
	)
	b := openT(t, Config{Dir: vol + "/sink", MinFreeBytes: minFree}, options{
		afterReclaim: func(r reclaimed) {
			mu.Lock()
			reclaims = append(reclaims, r)
			mu.Unlock()
		},
	})
	dir := b.cfg.Dir

	// The sink is away: push until the buffer reports the disk full.
	base := time.Now()
	id := 1
	for b.Stats().DroppedDiskFull == 0 {
		push(t, b, mk(base, span(id, id+999)...))
		id += 1000
	}
	full := b.Stats()
	duFull, files := diskUsage(t, dir)
	t.Logf("disk full: %d samples held (%d bytes), store %d bytes in %d files, %d bytes free", full.Depth, full.Bytes, duFull, files, freeBytes(t, vol))

	// The sink is back: drain and ack everything.
	for b.Stats().Depth > 0 {
		batch := next(t, b, 1000)
		if err := b.Ack(batch); err != nil {
			t.Fatalf("Ack = %v", err)
		}
	}
	drained := time.Now()
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)

	// Live traffic (~10,000 samples/s) is accepted again, and the store
	// gives its space back.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var accepted, shrunk time.Duration
	for accepted == 0 || shrunk == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("after the drain: accepted after %v, store shrunk after %v (0: not yet); stats %+v, free %d", accepted, shrunk, b.Stats(), freeBytes(t, vol))
		case <-tick.C:
		}
		before := b.Stats().Pushed
		push(t, b, mk(base, span(id, id+99)...))
		id += 100
		if accepted == 0 && b.Stats().Pushed > before {
			accepted = time.Since(drained)
		}
		if du, _ := diskUsage(t, dir); shrunk == 0 && du < duFull/2 {
			shrunk = time.Since(drained)
		}
	}
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	du, files := diskUsage(t, dir)
	mu.Lock()
	var took time.Duration
	for _, r := range reclaims {
		took += r.took
	}
	n := len(reclaims)
	mu.Unlock()
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	t.Logf("drained %d samples; live samples accepted %v later; store %d -> %d bytes (%d files) %v later; %d reclaims took %v; process CPU from the drain until then %v; %d bytes free",
		full.Depth, accepted.Round(time.Millisecond), duFull, du, files, shrunk.Round(time.Millisecond), n, took.Round(time.Millisecond), cpu.Round(time.Millisecond), freeBytes(t, vol))
	if free := freeBytes(t, vol); free < minFree {
		t.Errorf("free space %d still below the reserve %d", free, minFree)
	}
}

// diskUsage is du of dir: the bytes its files occupy, and how many.
func diskUsage(t *testing.T, dir string) (int64, int) {
	t.Helper()
	var n int64
	files := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil // deleted meanwhile
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("du %s: %v", dir, err)
	}
	return n, files
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize) // Bsize is int32 on 32-bit ARM
}
