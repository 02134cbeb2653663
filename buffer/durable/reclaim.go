package durable

import "time"

// Disk space: what the free-space check counts, and how acked data gives
// its space back.
//
// An Ack deletes its chunks with tombstones, but that frees no disk: the
// chunks stay in their sstables until a compaction rewrites them, and
// Pebble schedules compactions by level sizes, which a draining queue
// never triggers. A store that filled its disk during an outage therefore
// stayed full after the backlog drained, and refused every live sample
// (issue 11). So the buffer compacts the acked span itself, in one
// goroutine per store, off the hot path:
//
//   - at open, for what an earlier run acked and never compacted;
//   - once reclaimAfter bytes have left the store since the last reclaim;
//   - whenever the free-space check finds the disk short of min_free_bytes
//     while the acked span still occupies sstables.
//
// A reclaim compacts [first key, back head): Pebble flushes the memtable
// holding the latest tombstones, the tombstones meet the chunks they cover
// at the bottom level and both vanish, and the obsolete sstables are
// deleted (TargetByteDeletionRate is 0: no pacing). Between two reclaims
// the goroutine rests at least as long as the last one took, and at least
// reclaimRest, so compaction never takes more than half a core.
//
// The free-space check counts what a reclaim will give back: the disk is
// short when free + reclaimable < min_free_bytes, so a drained buffer
// accepts samples again at its next check instead of waiting for the
// compaction. It never counts on that below half the reserve of real free
// space: there a Push waits (block) or drops (disk_full) until the
// reclaim has run. An Ack on a short disk, and a reclaim that freed
// space, make the next Push look again at once. And between two checks a writer may only use half of
// the free space above that floor (a written byte costs up to two on disk
// until the WAL it went to is flushed), so a fast writer cannot run the
// disk full within one recheck interval, which Pebble does not survive.

// reclaimAfter is how many bytes (as counted in Stats.Bytes) may leave the
// store before their span is compacted, when the disk is not short.
const reclaimAfter = 4 << 20

// reclaimMin is the least a short disk compacts for: an estimate below it
// is the part of a block the span's edge cuts through, not acked data.
const reclaimMin = 64 << 10

// reclaimRest is the shortest pause between two reclaims.
const reclaimRest = time.Second

// reclaimer runs the reclaims of one store.
type reclaimer struct {
	kick chan struct{} // buffered: one reclaim pending at most
	stop chan struct{}
	done chan struct{}
	rest time.Duration
	// after, when set, is told of each reclaim (tests).
	after func(reclaimed)
}

// reclaimed is what one reclaim did.
type reclaimed struct {
	head         uint64 // the span [0, head) was compacted
	before, used int64  // store bytes on disk before and after
	took         time.Duration
	err          error
}

func newReclaimer(rest time.Duration, after func(reclaimed)) *reclaimer {
	return &reclaimer{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), rest: rest, after: after}
}

// startReclaim runs the loop; stopReclaim ends it.
func (b *Buffer) startReclaim() {
	go b.reclaimLoop()
}

// stopReclaim ends the loop and waits for a reclaim in progress: call it
// before the store closes.
func (b *Buffer) stopReclaim() {
	if b.rc == nil {
		return
	}
	close(b.rc.stop)
	<-b.rc.done
}

// kickReclaim asks for a reclaim without waiting. Called with mu held.
func (b *Buffer) kickReclaim() {
	if b.rc == nil {
		return
	}
	select {
	case b.rc.kick <- struct{}{}:
	default: // one is pending already
	}
}

// noteGone counts size bytes that left the store, and asks for a reclaim
// once enough have. Called with mu held.
func (b *Buffer) noteGone(size int64) {
	b.gone += size
	if b.gone >= reclaimAfter {
		b.kickReclaim()
	}
}

func (b *Buffer) reclaimLoop() {
	defer close(b.rc.done)
	for {
		select {
		case <-b.rc.stop:
			return
		case <-b.rc.kick:
		}
		select {
		case <-b.rc.stop: // Release wins over a pending reclaim
			return
		default:
		}
		r := b.reclaim()
		if r.err != nil {
			b.log.Warn("buffer store: compaction of acked data failed", "err", r.err)
		} else if r.before > r.used {
			b.log.Info("buffer store: acked data compacted", "freed_bytes", r.before-r.used, "store_bytes", r.used, "took", r.took)
		}
		if b.rc.after != nil {
			b.rc.after(r)
		}
		t := time.NewTimer(max(r.took, b.rc.rest))
		select {
		case <-b.rc.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// reclaim compacts the span every region has left behind.
func (b *Buffer) reclaim() reclaimed {
	b.mu.Lock()
	head := b.back.head // the backlog precedes the live region
	b.gone = 0          // what leaves from now on is the next reclaim's
	b.mu.Unlock()
	start := time.Now()
	r := reclaimed{head: head, before: b.storeUsage()}
	r.err = b.db.Compact([]byte{recPrefix}, recKey(nil, head), false)
	r.took = time.Since(start)
	r.used = b.storeUsage()
	if r.used < r.before {
		b.mu.Lock()
		b.diskStale = true // look at the disk again at the next Push
		b.notFull.Broadcast()
		b.mu.Unlock()
	}
	return r
}

// storeUsage is the store's size on disk once Pebble deleted the
// sstables a compaction made obsolete: live sstables, WAL files (recycled
// ones too), manifest.
func (b *Buffer) storeUsage() int64 {
	m := b.db.Metrics()
	return int64(m.DiskSpaceUsage()) - int64(m.Table.ObsoleteSize) - int64(m.Table.ZombieSize)
}

// reclaimable estimates the disk space a reclaim would free: the
// sstables' share of the span before the backlog head, and sstables
// already obsolete but not yet deleted. Called with mu held.
func (b *Buffer) reclaimable() int64 {
	n, err := b.db.EstimateDiskUsage([]byte{recPrefix}, recKey(nil, b.back.head))
	if err != nil {
		return 0
	}
	m := b.db.Metrics()
	return int64(n) + int64(m.Table.ObsoleteSize) + int64(m.Table.ZombieSize)
}

// checkDisk reports whether the disk is short of the free-space reserve,
// asking the OS at most once per recheck, or sooner once the writes since
// the last look used up their budget. Called with wmu and mu held.
func (b *Buffer) checkDisk() bool {
	now := b.now()
	if !b.diskAt.IsZero() && !b.diskStale && now.Sub(b.diskAt) < b.recheck && now.After(b.diskAt) && (b.diskFull || b.diskBudget > 0) {
		return b.diskFull
	}
	b.diskAt, b.diskStale = now, false
	free, err := b.free()
	if err != nil {
		// Unknown: keep writing, as before the check existed; look again
		// at the next interval.
		b.diskBudget = 1 << 62
		b.diskFull = false
		return false
	}
	var reclaimable int64
	if free < b.cfg.MinFreeBytes {
		if reclaimable = b.reclaimable(); reclaimable >= reclaimMin {
			b.kickReclaim()
		}
	}
	floor := b.cfg.MinFreeBytes / 2
	full := free+reclaimable < b.cfg.MinFreeBytes || free < floor
	b.diskBudget = (free - floor) / 2
	if full != b.diskFull {
		if full {
			b.log.Error("disk almost full; buffer refuses new samples", "free_bytes", free, "reclaimable_bytes", reclaimable, "min_free_bytes", b.cfg.MinFreeBytes)
		} else {
			b.log.Info("disk space back; buffer accepts samples again", "free_bytes", free, "reclaimable_bytes", reclaimable)
		}
	}
	b.diskFull = full
	return full
}
