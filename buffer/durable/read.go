package durable

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// read hands out up to max consecutive samples of r. It returns false when
// it found only unreadable ones, which it dropped. Called with mu held.
func (b *Buffer) read(r *region, max int) (buffer.Batch, bool) {
	isBack := r == &b.back
	if isBack && b.cfg.DrainRate > 0 && !b.closed {
		max = min(max, int(b.drain.avail))
	}
	out := b.scratch[:0]
	sizes := b.fl.sizes[:0]
	ends := b.fl.ends[:0]
	first := r.sent
	if out, sizes = b.cache.get(first, min(max, int(r.end-first)), out, sizes); len(out) > 0 {
		if isBack {
			for i := range out {
				out[i].Historical = true
			}
		}
		ends, ok := b.cache.ends(first, first+uint64(len(out)), ends)
		return b.handOut(r, out, sizes, ends, ok, first), true
	}
	var (
		bad     error // an unreadable record
		badPos  uint64
		badSize int
	)
	err := walk(b.db, r.sent, r.end, r.end, &b.offs, func(pos uint64, rec []byte, last uint64) bool {
		if len(out) >= max {
			return false
		}
		if len(out) == 0 && pos != first {
			if r.sent != r.head {
				return false // never skip past samples held before us
			}
			// A gap left by samples deleted as corrupt at open.
			r.head, r.sent, first = pos, pos, pos
		}
		if pos != first+uint64(len(out)) {
			return false // a gap: batches are runs of consecutive positions
		}
		s, derr := b.dec.decode(rec)
		if derr != nil {
			bad, badPos, badSize = derr, pos, len(rec)
			return false // what precedes it goes out; it is dropped next time
		}
		if isBack {
			s.Historical = true
		}
		out = append(out, s)
		sizes = append(sizes, int32(len(rec)))
		if pos == last {
			ends = append(ends, last)
		}
		return true
	})
	var bc *badChunk
	switch {
	case len(out) > 0:
	case bad != nil:
		b.dropCorrupt(r, badPos, int64(badSize), bad)
		return buffer.Batch{}, false
	case errors.As(err, &bc):
		b.dropBadChunk(r, bc)
		return buffer.Batch{}, false
	case err != nil:
		b.readFailed(r, err)
		return buffer.Batch{}, false
	default:
		// held says there is more, the store says no: trust the store.
		b.log.Error("buffer count out of step with the store; resetting region", "held", r.held)
		r.held, r.head, r.sent = 0, r.end, r.end
		b.normalize()
		return buffer.Batch{}, false
	}
	return b.handOut(r, out, sizes, ends, true, first), true
}

// handOut makes out, read from r at first, the batch in flight; ends are
// the keys of the chunks ending in it, if endsOK. Called with mu held.
func (b *Buffer) handOut(r *region, out []model.Sample, sizes []int32, ends []uint64, endsOK bool, first uint64) buffer.Batch {
	isBack := r == &b.back
	b.scratch = out
	r.sent = first + uint64(len(out))
	b.fl = flight{active: true, first: first, end: r.sent, back: isBack, sizes: sizes, ends: ends, endsOK: endsOK}
	if isBack && b.cfg.DrainRate > 0 && !b.closed {
		b.drain.avail -= float64(len(out))
	}
	return buffer.NewBatch(out, first)
}

// dropCorrupt drops an unreadable record at the head of r and counts it.
func (b *Buffer) dropCorrupt(r *region, pos uint64, size int64, err error) {
	b.log.Error("unreadable record in buffer store dropped", "err", err, "position", pos)
	from := r.head
	r.head, r.sent = pos+1, pos+1
	r.held--
	r.edgeOK = false
	b.bytes -= size
	b.stats.Dropped++
	b.stats.DroppedCorrupt++
	b.normalize()
	_ = b.cutNow(from, pos+1, nil, false)
	b.notFull.Broadcast()
}

// dropBadChunk drops a chunk whose framing is unreadable, met at the head
// of r: the samples r held in it, counted as corrupt. That is rare (a chunk
// that went bad after Open read it: damage on disk fails Pebble's own
// checksums first), so the rest of the store is read to make the counts
// exact: the chunk's records and their sizes are unknown, and r may have
// gaps before it (chunks acked in an earlier run), so neither its header
// nor its span says how many of r's samples it held.
func (b *Buffer) dropBadChunk(r *region, bc *badChunk) {
	from, end := r.head, bc.last+1
	left, leftBytes, ok := b.heldIn(end, r.end)
	n := r.held - left
	if !ok { // another unreadable chunk further on: estimate
		n = estimateHeld(r, bc)
	}
	n = min(max(n, 0), r.held)
	b.log.Error("unreadable chunk in buffer store dropped", "err", bc.err, "position", bc.last, "samples", n)
	r.head, r.sent = end, end
	r.held -= n
	r.edgeOK = false
	b.stats.Dropped += uint64(n)
	b.stats.DroppedCorrupt += uint64(n)
	b.normalize()
	other := &b.live
	if r == &b.live {
		other = &b.back
	}
	if _, otherBytes, otherOK := b.heldIn(other.head, other.end); ok && otherOK && r.held == left {
		b.bytes = leftBytes + otherBytes
	} else {
		b.bytes -= min(b.bytes, int64(bc.size)) // its value's size stands in
	}
	_ = b.cutNow(from, end, nil, false)
	b.notFull.Broadcast()
}

// estimateHeld is how many of r's samples the bad chunk held, when the
// rest of r cannot be counted: the count its header claims, no more than
// r holds up to it and no less than r must hold there (r's samples beyond
// it fit in the positions after it).
func estimateHeld(r *region, bc *badChunk) int {
	span := bc.last + 1 - r.head
	lower := r.held - int(min(r.end-bc.last-1, uint64(r.held)))
	return max(int(min(bc.claimed, span)), lower)
}

// heldIn counts the samples the store holds in [from, to), which ends a
// chunk, and their bytes; ok is false when it could not read them all.
func (b *Buffer) heldIn(from, to uint64) (n int, size int64, ok bool) {
	err := walk(b.db, from, to, to, &b.offs, func(_ uint64, rec []byte, _ uint64) bool {
		n++
		size += int64(len(rec))
		return true
	})
	return n, size, err == nil
}

// readFailed handles a store that cannot be read at r's head: everything
// in r is dropped as corrupt, so that the sink can go on with newer data.
func (b *Buffer) readFailed(r *region, err error) {
	b.log.Error("buffer store read failed; dropping the unreadable region", "err", err, "samples", r.held)
	from, to := r.head, r.end
	b.stats.Dropped += uint64(r.held)
	b.stats.DroppedCorrupt += uint64(r.held)
	r.held, r.head, r.sent, r.edgeOK = 0, r.end, r.end, false
	b.normalize()
	other := &b.live
	if r == &b.live {
		other = &b.back
	}
	if _, size, ok := b.heldIn(other.head, other.end); ok {
		b.bytes = size // r's sizes are unknown: count what is left
	} else if b.held() == 0 {
		b.bytes = 0
	}
	_ = b.cutNow(from, to, nil, false)
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

// Ack implements buffer.Buffer: the batch's samples leave the store (the
// chunks they end, and the heads marker for a chunk acked in part). The
// write is not synced by itself (the next synced write carries it): after
// a crash or a power loss, the samples acked since then may be delivered
// again. Syncing here would cost a sink an fsync per batch.
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
	keys, known := b.keys[:0], false
	if b.fl.active && b.fl.first == first && end <= b.fl.end {
		for p := from; p < end; p++ {
			size += int64(b.fl.sizes[p-first])
		}
		if known = b.fl.endsOK && first <= r.head; known {
			for _, k := range b.fl.ends {
				if k >= r.head && k < end {
					keys = append(keys, k)
				}
			}
		}
	} else {
		size = b.sizeOf(r.head, end) // a batch we no longer track
	}
	head := r.head
	b.cache.forget(end)
	r.held -= n
	r.head = end
	r.edgeOK = false
	if r.sent < end {
		r.sent = end
	}
	b.bytes -= size
	b.noteGone(size)
	// On a short disk, what was acked may be what makes room: the next
	// Push looks at the disk again instead of waiting out the interval.
	b.diskStale = b.diskStale || b.diskFull
	b.stats.Acked += uint64(n)
	if b.fl.active && end >= b.fl.end {
		b.fl.active = false
	}
	if b.live.held == 0 {
		b.caughtUp = b.now()
	}
	b.normalize()
	err := b.cutNow(head, end, keys, known)
	b.keys = keys[:0]
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
