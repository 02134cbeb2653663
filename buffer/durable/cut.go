package durable

import (
	"encoding/binary"

	"github.com/cockroachdb/pebble"

	"github.com/weir-edge/weir/buffer"
)

// Samples leave the store from the front of a region: acked, dropped by
// drop_oldest or max_age, or unreadable. Whichever the cause, the region's
// head moves, the chunks that end before it are deleted, and the heads
// marker records where the heads are, for the chunk cut in two (heads).

// sizeOf sums the record sizes of the samples held in [from, to).
func (b *Buffer) sizeOf(from, to uint64) int64 {
	var n int64
	_ = walk(b.db, from, to, beyond(to), &b.offs, func(_ uint64, rec []byte, _ uint64) bool {
		n += int64(len(rec))
		return true
	})
	return n
}

// dropFront drops the oldest samples, backlog first, until at least count
// samples and size bytes are gone; the deletes go into wb. It returns how
// many it dropped. Called with mu held.
func (b *Buffer) dropFront(wb *pebble.Batch, count int, size int64) int {
	dropped := 0
	for _, r := range []*region{&b.back, &b.live} {
		if (count <= 0 && size <= 0) || r.held == 0 {
			continue
		}
		n, sz, end, keys, known := b.scanFront(r, func(n int, sz int64, _ []byte) bool { return n >= count && sz >= size })
		if n == 0 {
			continue
		}
		b.deleteIn(wb, r.head, end, keys, known)
		b.advance(r, n, sz, end)
		count -= n
		size -= sz
		dropped += n
	}
	b.normalize()
	if dropped > 0 {
		b.putHeads(wb)
	}
	return dropped
}

// scanFront reads r from its head until done(samples, bytes, next record)
// says enough, and returns the samples and bytes read, the position after
// them and the keys of the chunks that end before it (known is false when
// there were too many to list).
func (b *Buffer) scanFront(r *region, done func(n int, size int64, rec []byte) bool) (n int, size int64, end uint64, keys []uint64, known bool) {
	end, keys, known = r.head, b.keys[:0], true
	_ = walk(b.db, r.head, r.end, r.end, &b.offs, func(pos uint64, rec []byte, last uint64) bool {
		if done(n, size, rec) {
			return false
		}
		n++
		size += int64(len(rec))
		end = pos + 1
		if pos == last {
			if len(keys) < maxPointDeletes {
				keys = append(keys, last)
			} else {
				known = false
			}
		}
		return true
	})
	b.keys = keys[:0]
	return n, size, end, keys, known
}

// advance moves r's head past n dropped samples of size bytes.
func (b *Buffer) advance(r *region, n int, size int64, end uint64) {
	r.held -= n
	r.head = end
	r.edgeOK = false
	if r.sent < end {
		r.sent = end
	}
	b.bytes -= size
	b.noteGone(size)
}

// expireLocked drops samples older than MaxAge from the front of both
// regions. Edge times are wall clock; the buffer keeps sequence order, so
// a sample younger than an older-positioned one waits for it to go.
func (b *Buffer) expireLocked() {
	if b.cfg.MaxAge <= 0 || b.db == nil || b.released || b.readOnly {
		return
	}
	cutoff := b.now().Add(-b.cfg.MaxAge).UnixNano()
	for _, r := range []*region{&b.back, &b.live} {
		if r.held == 0 || b.headEdge(r) >= cutoff {
			continue
		}
		n, sz, end, keys, known := b.scanFront(r, func(_ int, _ int64, rec []byte) bool { return edgeTimeOf(rec) >= cutoff })
		if n == 0 {
			continue
		}
		head := r.head
		b.advance(r, n, sz, end)
		b.normalize()
		if err := b.cutNow(head, end, keys, known); err != nil {
			// They are gone for this run; a restart may deliver them.
			b.log.Error("expire: delete failed", "err", err)
		}
		b.stats.Dropped += uint64(n)
		b.stats.DroppedAge += uint64(n)
		b.drops.add("age", uint64(n), b.now())
		b.notFull.Broadcast()
	}
	b.normalize()
}

// headEdge is the EdgeTime of r's oldest sample, cached until head moves.
func (b *Buffer) headEdge(r *region) int64 {
	if r.held == 0 {
		return 0
	}
	if !r.edgeOK {
		if s, ok := b.cache.at(r.head); ok {
			r.edge, r.edgeOK = s.EdgeTime, true
			return r.edge
		}
		_ = walk(b.db, r.head, r.end, r.end, &b.offs, func(_ uint64, rec []byte, _ uint64) bool {
			r.edge, r.edgeOK = edgeTimeOf(rec), true
			return false
		})
	}
	return r.edge
}

// Stats implements buffer.Buffer.
func (b *Buffer) Stats() buffer.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.released {
		b.expireLocked()
	}
	s := b.stats
	s.Depth = b.held()
	s.Bytes = b.bytes
	s.Backlog = b.back.held
	if !b.released {
		if b.back.held > 0 {
			s.OldestEdgeTime = b.headEdge(&b.back)
		} else {
			s.OldestEdgeTime = b.headEdge(&b.live)
		}
	}
	return s
}

// maxPointDeletes is the most chunks deleted key by key. More (a long run
// of small chunks) get one range tombstone: every point tombstone is
// written again by each flush and compaction, where a range tombstone also
// lets a flush drop the chunks it covers. Few chunks stay point deletes
// because Pebble fragments the memtable's range tombstones for every new
// iterator, and a sink acking a batch at a time would pile up thousands.
const maxPointDeletes = 255

// deleteIn adds to wb the deletion of the chunks that end in [from, to):
// keys, when known lists them all, or else a range.
func (b *Buffer) deleteIn(wb *pebble.Batch, from, to uint64, keys []uint64, known bool) {
	if known && len(keys) <= maxPointDeletes {
		var key [keyLen]byte // Delete copies it
		for _, k := range keys {
			putKey(key[:], k)
			_ = wb.Delete(key[:], nil)
		}
		return
	}
	if to > from {
		_ = wb.DeleteRange(recKey(nil, from), recKey(nil, to), nil)
	}
}

var headsKeyBytes = []byte(headsKey)

// putHeads adds the heads marker, as the regions are now, to wb: call it
// after normalize.
func (b *Buffer) putHeads(wb *pebble.Batch) {
	b.putHeadsAt(wb, heads{back: b.back.head, live: b.live.head})
}

func (b *Buffer) putHeadsAt(wb *pebble.Batch, h heads) {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], h.back)
	binary.BigEndian.PutUint64(v[8:], h.live)
	_ = wb.Set(headsKeyBytes, v[:], nil)
	b.marks++
}

// cutNow deletes the chunks that end in [from, to) and writes the heads
// marker, without a sync: a cut lost to a crash or a power cut only means
// samples are delivered again. Call it after the regions moved, and normalize.
func (b *Buffer) cutNow(from, to uint64, keys []uint64, known bool) error {
	wb := b.db.NewBatch()
	defer wb.Close()
	b.deleteIn(wb, from, to, keys, known)
	b.putHeads(wb)
	return b.db.Apply(wb, pebble.NoSync)
}

// putHeadsNow writes the heads marker alone.
func (b *Buffer) putHeadsNow() {
	wb := b.db.NewBatch()
	defer wb.Close()
	b.putHeads(wb)
	if err := b.db.Apply(wb, pebble.NoSync); err != nil {
		b.log.Error("buffer heads marker: write failed", "err", err)
	}
}
