package durable

import (
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
		if r.held == 0 {
			continue
		}
		it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: recKey(nil, r.head), UpperBound: recKey(nil, r.end)})
		if err != nil {
			return fmt.Errorf("durable buffer %s: %w", b.cfg.Dir, err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			s, err := d.decode(it.Value())
			if err != nil {
				continue // counted when Next meets it
			}
			s.Historical = s.Historical || r == &b.back
			if err := fn(s); err != nil {
				_ = it.Close()
				return err
			}
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("durable buffer %s: %w", b.cfg.Dir, err)
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
	n := b.held()
	if err := b.db.DeleteRange([]byte{recPrefix}, []byte{recPrefix + 1}, pebble.Sync); err != nil {
		return 0, fmt.Errorf("durable buffer %s: purge: %w", b.cfg.Dir, err)
	}
	end := b.live.end
	b.live = region{head: end, sent: end, end: end}
	b.cache.reset()
	b.bytes = 0
	b.fl.active = false
	b.normalize()
	b.notFull.Broadcast()
	b.log.Warn("buffer purged", "samples", n)
	return n, nil
}
