package durable

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
)

// backlogAfter is how long live data may wait before, with a drain rate
// set, it turns into backlog: the sink was down or far behind, and what
// arrives from now on should not queue behind it.
const backlogAfter = 5 * time.Second

// Next implements buffer.Buffer. With a batch still in flight (a consumer
// breaking the one-batch rule) that batch is taken as nacked.
func (b *Buffer) Next(ctx context.Context, max int) (buffer.Batch, error) {
	if max < 1 {
		max = 1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fl.active {
		b.nackLocked(b.fl.first)
	}
	for {
		if b.released {
			return buffer.Batch{}, buffer.ErrClosed
		}
		b.expireLocked()
		r, wait := b.pick()
		if r != nil {
			if batch, ok := b.read(r, max); ok {
				return batch, nil
			}
			continue // only unreadable records there, now dropped
		}
		if b.closed && wait == 0 {
			return buffer.Batch{}, buffer.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return buffer.Batch{}, err
		}
		b.waitData(ctx, wait)
	}
}

// waitData waits for a Push, Close, ctx, or d when d > 0. Called with mu.
func (b *Buffer) waitData(ctx context.Context, d time.Duration) {
	wake := func() {
		b.mu.Lock()
		b.notEmpty.Broadcast()
		b.mu.Unlock()
	}
	stop := context.AfterFunc(ctx, wake)
	defer stop()
	if d > 0 {
		t := time.AfterFunc(d, wake)
		defer t.Stop()
	}
	b.notEmpty.Wait()
}

// pick chooses the region the next batch comes from; nil with a wait when
// only a rate-limited backlog is left. Called with mu held.
func (b *Buffer) pick() (*region, time.Duration) {
	backOK := b.back.held > 0 && b.back.sent < b.back.end
	liveOK := b.live.held > 0 && b.live.sent < b.live.end
	now := b.now()
	if !liveOK && b.live.held == 0 {
		b.caughtUp = now
	}
	if b.cfg.DrainRate == 0 || b.closed {
		// FIFO; and at shutdown, drain as fast as the sink takes it.
		switch {
		case backOK:
			return &b.back, 0
		case liveOK:
			return &b.live, 0
		}
		return nil, 0
	}
	if b.back.held == 0 && liveOK && now.Sub(b.caughtUp) > backlogAfter {
		// The live data waited too long: it is backlog now.
		b.back, b.live = b.live, region{head: b.live.end, sent: b.live.end, end: b.live.end}
		b.caughtUp = now
		backOK, liveOK = true, false
		b.log.Info("sink fell behind; held samples become backlog", "samples", b.back.held)
	}
	b.drain.refill(now)
	// Live data first: the backlog only fills the sink's idle time, within
	// its rate, so a replay never delays live samples by more than the
	// one backlog batch that may be in flight.
	if liveOK {
		return &b.live, 0
	}
	if backOK && b.drain.avail >= 1 {
		return &b.back, 0
	}
	if backOK {
		return nil, b.drain.wait()
	}
	return nil, 0
}

// read hands out up to max consecutive records of r. It returns false when
// it found only unreadable records, which it dropped. Called with mu held.
func (b *Buffer) read(r *region, max int) (buffer.Batch, bool) {
	isBack := r == &b.back
	if isBack && b.cfg.DrainRate > 0 && !b.closed {
		max = min(max, int(b.drain.avail))
	}
	out := b.scratch[:0]
	sizes := b.fl.sizes[:0]
	first := r.sent
	if out, sizes = b.cache.get(first, min(max, int(r.end-first)), out, sizes); len(out) > 0 {
		if isBack {
			for i := range out {
				out[i].Historical = true
			}
		}
		return b.handOut(r, out, sizes, first), true
	}
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: recKey(nil, r.sent), UpperBound: recKey(nil, r.end)})
	if err != nil {
		b.readFailed(r, err)
		return buffer.Batch{}, false
	}
	defer it.Close()
	for ok := it.First(); ok && len(out) < max; ok = it.Next() {
		pos, _ := keyPos(it.Key())
		if len(out) == 0 && pos != first {
			if r.sent != r.head {
				break // never skip past records held before us
			}
			// A gap left by records deleted as corrupt at open.
			r.head, r.sent, first = pos, pos, pos
		}
		if pos != first+uint64(len(out)) {
			break // a gap: batches are runs of consecutive positions
		}
		s, derr := b.dec.decode(it.Value())
		if derr != nil {
			if len(out) > 0 {
				break // hand out what precedes it; it is dropped next time
			}
			b.dropCorrupt(r, pos, int64(len(it.Value())), derr)
			return buffer.Batch{}, false
		}
		if isBack {
			s.Historical = true
		}
		out = append(out, s)
		sizes = append(sizes, int32(len(it.Value())))
	}
	if err := it.Error(); err != nil && len(out) == 0 {
		b.readFailed(r, err)
		return buffer.Batch{}, false
	}
	if len(out) == 0 {
		// held says there is more, the store says no: trust the store.
		b.log.Error("buffer count out of step with the store; resetting region", "held", r.held)
		r.held, r.head, r.sent = 0, r.end, r.end
		b.normalize()
		return buffer.Batch{}, false
	}
	return b.handOut(r, out, sizes, first), true
}

// handOut makes out, read from r at first, the batch in flight. Called
// with mu held.
func (b *Buffer) handOut(r *region, out []model.Sample, sizes []int32, first uint64) buffer.Batch {
	isBack := r == &b.back
	b.scratch = out
	r.sent = first + uint64(len(out))
	b.fl = flight{active: true, first: first, end: r.sent, back: isBack, sizes: sizes}
	if isBack && b.cfg.DrainRate > 0 && !b.closed {
		b.drain.avail -= float64(len(out))
	}
	return buffer.NewBatch(out, first)
}

// dropCorrupt deletes an unreadable record at the head of r and counts it.
func (b *Buffer) dropCorrupt(r *region, pos uint64, size int64, err error) {
	b.log.Error("unreadable record in buffer store dropped", "err", err, "position", pos)
	_ = b.db.Delete(recKey(nil, pos), pebble.NoSync)
	r.head, r.sent = pos+1, pos+1
	r.held--
	r.edgeOK = false
	b.bytes -= size
	b.stats.Dropped++
	b.stats.DroppedCorrupt++
	b.normalize()
	b.notFull.Broadcast()
}

// readFailed handles a store that cannot be read at r's head: everything
// in r is dropped as corrupt, so that the sink can go on with newer data.
func (b *Buffer) readFailed(r *region, err error) {
	b.log.Error("buffer store read failed; dropping the unreadable region", "err", err, "samples", r.held)
	_ = b.db.DeleteRange(recKey(nil, r.head), recKey(nil, r.end), pebble.NoSync)
	b.stats.Dropped += uint64(r.held)
	b.stats.DroppedCorrupt += uint64(r.held)
	r.held, r.head, r.sent, r.edgeOK = 0, r.end, r.end, false
	b.normalize()
	b.notFull.Broadcast()
}

// regionOf is the region a batch starting at pos was handed out from. The
// batch in flight knows; any other is stale, and then any region whose
// head is past it makes its Ack a no-op.
func (b *Buffer) regionOf(pos uint64) *region {
	if b.fl.active && pos >= b.fl.first && pos < b.fl.end {
		if b.fl.back {
			return &b.back
		}
		return &b.live
	}
	if b.back.held > 0 && pos < b.back.end {
		return &b.back
	}
	return &b.live
}

// Ack implements buffer.Buffer: the batch's records leave the store. The
// delete is not synced by itself (the next synced write carries it): after
// a power loss, the last acked samples may be delivered again.
func (b *Buffer) Ack(batch buffer.Batch) error {
	first, end := batch.Span()
	if end <= first {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return buffer.ErrClosed
	}
	r := b.regionOf(first)
	if end <= r.head {
		return nil // acked already, or dropped meanwhile
	}
	from := max(first, r.head)
	n := int(end - from)
	var size int64
	if b.fl.active && b.fl.first == first && end <= b.fl.end {
		for p := from; p < end; p++ {
			size += int64(b.fl.sizes[p-first])
		}
	} else {
		size = b.sizeOf(r.head, end) // a batch we no longer track
	}
	err := b.deleteNow(r.head, end)
	b.cache.forget(end)
	r.held -= n
	r.head = end
	r.edgeOK = false
	if r.sent < end {
		r.sent = end
	}
	b.bytes -= size
	b.stats.Acked += uint64(n)
	if b.fl.active && end >= b.fl.end {
		b.fl.active = false
	}
	if b.live.held == 0 {
		b.caughtUp = b.now()
	}
	b.normalize()
	b.notFull.Broadcast()
	if err != nil {
		return fmt.Errorf("durable buffer %s: ack: %w", b.cfg.Dir, err)
	}
	return nil
}

// Nack implements buffer.Buffer.
func (b *Buffer) Nack(batch buffer.Batch) {
	first, _ := batch.Span()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nackLocked(first)
}

func (b *Buffer) nackLocked(first uint64) {
	r := b.regionOf(first)
	from := max(first, r.head)
	if from < r.sent {
		n := r.sent - from
		b.stats.Redelivered += n
		if r == &b.back && b.cfg.DrainRate > 0 {
			b.drain.refund(float64(n))
		}
		r.sent = from
	}
	b.fl.active = false
	b.notEmpty.Signal()
}

// normalize keeps an empty backlog glued to the live region, so that
// "first < back.end" always means "from the backlog".
func (b *Buffer) normalize() {
	if b.back.held <= 0 {
		h := b.live.head
		b.back = region{head: h, sent: h, end: h}
	}
	if b.live.held <= 0 && b.live.sent >= b.live.end {
		b.live.held = 0
		b.live.head = b.live.end
	}
}

// sizeOf sums the record sizes in [from, to).
func (b *Buffer) sizeOf(from, to uint64) int64 {
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: recKey(nil, from), UpperBound: recKey(nil, to)})
	if err != nil {
		return 0
	}
	defer it.Close()
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		n += int64(len(it.Value()))
	}
	return n
}

// dropFront drops the oldest records, backlog first, until at least count
// records and size bytes are gone; the deletes go into wb. It returns how
// many it dropped. Called with mu held.
func (b *Buffer) dropFront(wb *pebble.Batch, count int, size int64) int {
	dropped := 0
	for _, r := range []*region{&b.back, &b.live} {
		if (count <= 0 && size <= 0) || r.held == 0 {
			continue
		}
		n, sz, end := b.scanFront(r, func(n int, sz int64, _ int64) bool { return n >= count && sz >= size })
		if n == 0 {
			continue
		}
		b.deleteIn(wb, r.head, end)
		b.advance(r, n, sz, end)
		count -= n
		size -= sz
		dropped += n
	}
	b.normalize()
	return dropped
}

// scanFront reads r from its head until done(records, bytes, next edge
// time) says enough, and returns the records and bytes read and the
// position after them.
func (b *Buffer) scanFront(r *region, done func(n int, size int64, edge int64) bool) (int, int64, uint64) {
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: recKey(nil, r.head), UpperBound: recKey(nil, r.end)})
	if err != nil {
		return 0, 0, r.head
	}
	defer it.Close()
	n, size, end := 0, int64(0), r.head
	for ok := it.First(); ok; ok = it.Next() {
		if done(n, size, edgeTimeOf(it.Value())) {
			break
		}
		pos, _ := keyPos(it.Key())
		n++
		size += int64(len(it.Value()))
		end = pos + 1
	}
	return n, size, end
}

// advance moves r's head past n dropped records of size bytes.
func (b *Buffer) advance(r *region, n int, size int64, end uint64) {
	r.held -= n
	r.head = end
	r.edgeOK = false
	if r.sent < end {
		r.sent = end
	}
	b.bytes -= size
}

// expireLocked drops samples older than MaxAge from the front of both
// regions. Edge times are wall clock; the buffer keeps sequence order, so
// a sample younger than an older-positioned one waits for it to go.
func (b *Buffer) expireLocked() {
	if b.cfg.MaxAge <= 0 || b.db == nil || b.released {
		return
	}
	cutoff := b.now().Add(-b.cfg.MaxAge).UnixNano()
	for _, r := range []*region{&b.back, &b.live} {
		if r.held == 0 || b.headEdge(r) >= cutoff {
			continue
		}
		n, sz, end := b.scanFront(r, func(_ int, _ int64, edge int64) bool { return edge >= cutoff })
		if n == 0 {
			continue
		}
		if err := b.deleteNow(r.head, end); err != nil {
			b.log.Error("expire: delete failed", "err", err)
			continue
		}
		b.advance(r, n, sz, end)
		b.stats.Dropped += uint64(n)
		b.stats.DroppedAge += uint64(n)
		b.drops.add("age", uint64(n), b.now())
		b.notFull.Broadcast()
	}
	b.normalize()
}

// headEdge is the EdgeTime of r's oldest record, cached until head moves.
func (b *Buffer) headEdge(r *region) int64 {
	if r.held == 0 {
		return 0
	}
	if !r.edgeOK {
		it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: recKey(nil, r.head), UpperBound: recKey(nil, r.end)})
		if err != nil {
			return 0
		}
		if it.First() {
			r.edge, r.edgeOK = edgeTimeOf(it.Value()), true
		}
		_ = it.Close()
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

// maxPointDeletes is the longest run deleted key by key. Longer runs (a
// sink's full batch) get one range tombstone: a thousand point deletes
// cost as much as reading the batch, and every one of them is written again
// by each flush and compaction, where a range tombstone also lets a flush
// drop the records it covers. Short runs stay point deletes because
// Pebble fragments the memtable's range tombstones for every new iterator,
// and a sink acking one sample at a time would pile up thousands.
const maxPointDeletes = 255

// deleteIn adds the deletion of positions [from, to) to wb.
func (b *Buffer) deleteIn(wb *pebble.Batch, from, to uint64) {
	if to-from > maxPointDeletes {
		_ = wb.DeleteRange(recKey(nil, from), recKey(nil, to), nil)
		return
	}
	var key [keyLen]byte // Delete copies it
	for p := from; p < to; p++ {
		_ = wb.Delete(recKey(key[:0], p), nil)
	}
}

// deleteNow deletes positions [from, to) without a sync: a delete lost to
// a power cut only means the samples are delivered again.
func (b *Buffer) deleteNow(from, to uint64) error {
	wb := b.db.NewBatch()
	defer wb.Close()
	b.deleteIn(wb, from, to)
	return b.db.Apply(wb, pebble.NoSync)
}
