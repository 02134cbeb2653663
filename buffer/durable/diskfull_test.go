package durable

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/weir-edge/weir/buffer"
)

// fakeVolume is a disk of a given capacity holding nothing but the store:
// free space is what the store does not use, as Pebble counts it, with
// obsolete sstables deleted at once.
type fakeVolume struct {
	capacity atomic.Int64
	b        atomic.Pointer[Buffer]
}

func (v *fakeVolume) free() (int64, error) {
	b := v.b.Load()
	if b == nil {
		return v.capacity.Load(), nil
	}
	return v.capacity.Load() - b.storeUsage(), nil
}

// TestDiskFullHeals is issue 11's disk full of acked data, with a fake
// free-space probe: the buffer fills the disk while the sink is away, the
// sink comes back and acks everything, and without a restart the buffer
// takes samples again — at once when what it can reclaim covers the
// reserve (counted by the free-space check), after the reclaim it
// triggers when even the real free space is below half the reserve.
func TestDiskFullHeals(t *testing.T) {
	const minFree = 1 << 20
	tests := []struct {
		name   string
		policy buffer.Policy
		// spare is the free space left when the disk counts as full.
		spare int64
		// waitReclaim: intake resumes only after a reclaim.
		waitReclaim bool
	}{
		{"drop_oldest/reclaimable-covers", buffer.DropOldest, minFree - 32<<10, false},
		{"drop_newest/reclaimable-covers", buffer.DropNewest, minFree - 32<<10, false},
		{"block/reclaimable-covers", buffer.Block, minFree - 32<<10, false},
		{"drop_oldest/below-half-the-reserve", buffer.DropOldest, minFree / 4, true},
		{"block/below-half-the-reserve", buffer.Block, minFree / 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := time.Unix(1_700_000_000, 0)
			clock := &fakeClock{t: base}
			vol := &fakeVolume{}
			vol.capacity.Store(1 << 40)
			reclaims := make(chan reclaimed, 64)
			b := openT(t, Config{Policy: tt.policy, MinFreeBytes: minFree, Fsync: FsyncOS}, options{
				now: clock.now, free: vol.free,
				reclaimRest:  time.Millisecond,
				afterReclaim: func(r reclaimed) { reclaims <- r },
				// Only the buffer's own compactions: a steady LSM.
				tune: func(o *pebble.Options) { o.DisableAutomaticCompactions = true },
			})
			vol.b.Store(b)

			// The sink is away: 55,000 samples (~3.7 MB, under reclaimAfter)
			// go to sstables.
			id := 1
			for ; id <= 55_000; id += 1000 {
				push(t, b, mk(base, span(id, id+999)...))
			}
			if err := b.db.Flush(); err != nil {
				t.Fatal(err)
			}
			held := b.Stats().Depth
			// The disk fills: free space drops below the reserve.
			vol.capacity.Store(b.storeUsage() + tt.spare)
			clock.add(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			blocked := make(chan error, 1)
			if tt.policy == buffer.Block {
				s := mk(base, id)
				go func() { blocked <- b.Push(ctx, s) }()
			} else {
				push(t, b, mk(base, id))
				if st := b.Stats(); st.DroppedDiskFull != 1 || st.Depth != held {
					t.Fatalf("disk full: stats = %+v, want dropped_disk_full=1 depth=%d", st, held)
				}
			}
			id++

			// The sink is back and drains everything.
			got := drainAll(t, b)
			if len(got) < held {
				t.Fatalf("drained %d samples, want %d", len(got), held)
			}
			if tt.policy == buffer.Block {
				if err := <-blocked; err != nil {
					t.Fatalf("Push blocked on the full disk = %v after the backlog drained", err)
				}
			}

			// Live samples are taken again, without a restart.
			var last reclaimed
			for {
				clock.add(time.Millisecond) // within the recheck interval: the acks and reclaims ask for the check
				before := b.Stats().Pushed
				if err := b.Push(ctx, mk(base, id)); err != nil {
					t.Fatalf("live Push = %v: stats = %+v, free %d", err, b.Stats(), must(vol.free()))
				}
				id++
				if b.Stats().Pushed > before {
					break
				}
				if !tt.waitReclaim {
					t.Fatalf("live sample refused after the backlog drained: stats = %+v, free %d", b.Stats(), must(vol.free()))
				}
				last = waitReclaim(ctx, t, reclaims, 0) // refused: only a reclaim can help
			}

			// The disk is no longer short once the reclaims the checks ask
			// for have run. (A sample may be refused meanwhile, while a
			// compaction's output takes real free space below half the
			// reserve.)
			for must(vol.free()) < minFree {
				clock.add(time.Second)
				push(t, b, mk(base, id))
				id++
				last = waitReclaim(ctx, t, reclaims, last.head)
			}
			clock.add(time.Second)
			before := b.Stats().Pushed
			push(t, b, mk(base, id))
			if b.Stats().Pushed == before {
				t.Fatalf("live sample refused with the disk no longer short: stats = %+v, free %d", b.Stats(), must(vol.free()))
			}
			if last.head == 0 { // it ran while a Push was blocked
				last = waitReclaim(ctx, t, reclaims, 1)
			}
		})
	}
}

// waitReclaim waits for a reclaim of the span up to head at least.
func waitReclaim(ctx context.Context, t *testing.T, reclaims <-chan reclaimed, head uint64) reclaimed {
	t.Helper()
	for {
		select {
		case r := <-reclaims:
			t.Logf("reclaim to %d: %d -> %d bytes in %s", r.head, r.before, r.used, r.took)
			if r.err != nil {
				t.Fatalf("reclaim: %v", r.err)
			}
			if r.head >= head {
				return r
			}
		case <-ctx.Done():
			t.Fatalf("no reclaim up to %d", head)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestDiskCheckBudget: a writer faster than the recheck interval looks at
// the disk again once it wrote half the free space above half the
// reserve, so it cannot run the disk full between two checks (the clock
// here moves a millisecond per push: the recheck interval never ends).
func TestDiskCheckBudget(t *testing.T) {
	const minFree = 1 << 20
	base := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{t: base}
	var free, probes atomic.Int64
	free.Store(minFree + 1<<20)
	opened := make(chan reclaimed, 1)
	b := openT(t, Config{MinFreeBytes: minFree, Fsync: FsyncOS}, options{
		now: clock.now,
		afterReclaim: func(r reclaimed) {
			select {
			case opened <- r:
			default:
			}
		},
		free: func() (int64, error) {
			probes.Add(1)
			return free.Load(), nil
		},
	})
	<-opened // the reclaim at open: it freed nothing, so it asks for no check
	budget := (free.Load() - minFree/2) / 2
	var written int64
	id := 1
	for written <= budget {
		clock.add(time.Millisecond)
		push(t, b, mk(base, span(id, id+99)...))
		id += 100
		written = b.Stats().Bytes
		if probes.Load() > 1 {
			t.Fatalf("disk looked at again after %d bytes, before the budget of %d was used", written, budget)
		}
		free.Store(minFree + 1<<20 - 2*written) // the disk fills as we write
	}
	clock.add(time.Millisecond)
	push(t, b, mk(base, id))
	if probes.Load() != 2 {
		t.Fatalf("disk looked at %d times after %d bytes written, want 2 (budget %d)", probes.Load(), written, budget)
	}
}
