package durable

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
)

// Each calls fn with every sample held, oldest first, without handing it
// out or removing it: for `weir buffer -export`. Samples from the backlog
// are marked Historical, as Next would. It stops at fn's first error.
func (b *Buffer) Each(fn func(model.Sample) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return buffer.ErrClosed
	}
	var d decoder
	for _, r := range []*region{&b.back, &b.live} {
		for from := r.head; r.held > 0 && from < r.end; {
			var ferr error
			err := walk(b.db, from, r.end, r.end, &b.offs, func(pos uint64, rec []byte, _ uint64) bool {
				from = pos + 1
				s, err := d.decode(rec)
				if err != nil {
					return true // counted when Next meets it
				}
				s.Historical = s.Historical || r == &b.back
				ferr = fn(s)
				return ferr == nil
			})
			if ferr != nil {
				return ferr
			}
			var bc *badChunk
			if !errors.As(err, &bc) {
				if err != nil {
					return fmt.Errorf("durable buffer %s: %w", b.cfg.Dir, err)
				}
				break
			}
			from = bc.last + 1 // counted when Next meets it
		}
	}
	return nil
}

// Purge deletes every sample held, on purpose (`weir buffer -purge`); they
// are not counted as dropped. It returns how many went.
func (b *Buffer) Purge() (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return 0, buffer.ErrClosed
	}
	if b.readOnly {
		return 0, errReadOnly
	}
	n := b.held()
	end := b.live.end
	wb := b.db.NewBatch()
	defer wb.Close()
	_ = wb.DeleteRange([]byte{recPrefix}, []byte{recPrefix + 1}, nil)
	b.putHeadsAt(wb, heads{back: end, live: end})
	if err := b.db.Apply(wb, pebble.Sync); err != nil {
		return 0, fmt.Errorf("durable buffer %s: purge: %w", b.cfg.Dir, err)
	}
	b.live = region{head: end, sent: end, end: end}
	b.cache.reset()
	b.noteGone(b.bytes)
	b.bytes = 0
	b.fl.active = false
	b.normalize()
	b.notFull.Broadcast()
	b.log.Warn("buffer purged", "samples", n)
	return n, nil
}
