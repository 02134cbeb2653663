package durable

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
)

// A pusher overrunning a small drop_oldest buffer (its drops and heads
// markers go into the Push's own Pebble batch) while a sink takes batches
// and acks them in full or in part, concurrently: after a restart no acked
// sample comes back and pushed = acked + dropped + held, to the sample.
func TestConcurrentDropOldestAndAck(t *testing.T) {
	const total = 40_000
	for _, tc := range []struct {
		name  string
		drain float64
	}{{"fifo", 0}, {"drain", 1e6}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			dir := t.TempDir() + "/sink"
			cfg := Config{Dir: dir, MaxSamples: 700, Policy: buffer.DropOldest, Fsync: FsyncGroup, DrainRate: tc.drain}
			b, err := open(cfg, testLog(t), options{now: clock.now})
			if err != nil {
				t.Fatal(err)
			}
			var (
				wg    sync.WaitGroup
				acked = make([]bool, total+1) // by sample id; the sink's only
			)
			wg.Go(func() { // the pusher: batches of 1..600, a second apart
				defer b.Close()
				for id := 1; id <= total; {
					n := min(1+(id*7919)%600, total-id+1)
					s := make([]model.Sample, n)
					for i := range s {
						s[i] = model.Sample{Path: "p", Value: model.Float(float64(id + i)), Seq: uint64(id + i), EdgeTime: clock.now().UnixNano()}
					}
					if err := b.Push(context.Background(), s); err != nil {
						t.Errorf("Push = %v", err)
						return
					}
					id += n
					clock.add(time.Second)
				}
			})
			wg.Go(func() { // the sink: every third batch acked in half, the rest nacked
				for i := range 500 { // at most 50,000 samples: it falls behind, then stops
					batch, err := b.Next(context.Background(), 1+(i*31)%200)
					if err != nil {
						return // closed and drained
					}
					k := batch.Len()
					if i%3 == 0 {
						k /= 2
					}
					if err := b.Ack(batch.Prefix(k)); err != nil {
						t.Errorf("Ack = %v", err)
						return
					}
					for _, s := range batch.Samples[:k] {
						acked[s.Seq] = true
					}
					if k < batch.Len() {
						b.Nack(batch)
					}
				}
			})
			wg.Wait()
			st := b.Stats()
			if err := b.Release(); err != nil {
				t.Fatal(err)
			}
			b = openT(t, Config{Dir: dir}, options{now: clock.now})
			got := seqs(drainAll(t, b))
			for _, id := range got {
				if acked[id] {
					t.Fatalf("%d came back after it was acked", id)
				}
			}
			if len(got)+int(st.Acked)+int(st.Dropped) != total || len(got) != st.Depth {
				t.Fatalf("delivered %d after the restart; stats before it %+v: want delivered = depth, delivered + acked + dropped = %d", len(got), st, total)
			}
			t.Logf("acked %d, dropped %d, %d held over the restart", st.Acked, st.Dropped, len(got))
		})
	}
}
