package durable

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/weir-edge/weir/model"
)

// TestPowerCutSoak cuts the power again and again under one store on
// Pebble's strict in-memory filesystem, while pushers push and a consumer
// acks: at a random moment every write not yet synced is dropped (the cut
// may fall in the middle of a Push or an Ack), then the store is reopened
// and checked. What it asserts, per pusher (each numbers its samples
// 0, 1, 2, …): the store holds one increasing, gap-free run; every number
// whose Push returned before the cut and that was not acked is in it (lost
// = 0); acked numbers may come back (the ack was not synced yet) and are
// counted as duplicates — the sink sees them twice; nothing is held twice
// and no number is out of order.
//
// The default suite cuts a few times; WEIR_SOAK=N cuts N times per fsync
// mode (the README's table: WEIR_SOAK=250), WEIR_SOAK_SEED=S repeats a
// schedule (the goroutines' interleaving still varies).
func TestPowerCutSoak(t *testing.T) {
	cuts := 3
	if n, err := strconv.Atoi(os.Getenv("WEIR_SOAK")); err == nil && n > 0 {
		cuts = n
	}
	for _, fsync := range []string{FsyncAlways, FsyncGroup} {
		t.Run(fsync, func(t *testing.T) {
			start := time.Now()
			seed := uint64(time.Now().UnixNano())
			if v, err := strconv.ParseUint(os.Getenv("WEIR_SOAK_SEED"), 10, 64); err == nil {
				seed = v
			}
			s := newCutSoak(fsync, 3, seed)
			for i := range cuts {
				s.cycle(t, i)
			}
			s.verify(t, cuts)
			r := s.totals
			t.Logf("fsync %s, seed %d: %d power cuts, %d samples confirmed, %d acks, lost %d, duplicates %d, order violations %d, %v",
				fsync, seed, cuts, r.confirmed, r.acked, r.lost, r.dups, r.order, time.Since(start).Round(time.Millisecond))
			if r.lost > 0 || r.order > 0 {
				t.Fatalf("%d samples lost, %d out of order over %d power cuts", r.lost, r.order, cuts)
			}
			if r.confirmed == 0 {
				t.Fatal("nothing was pushed")
			}
		})
	}
}

// cutSoak is the model the store is checked against.
type cutSoak struct {
	fs      *vfs.MemFS
	cfg     Config
	pushers int
	rng     *rand.Rand
	next    []uint64 // per pusher: the next number to push
	acked   []uint64 // per pusher: numbers below are acked
	totals  struct{ confirmed, acked, lost, dups, order int }
}

func newCutSoak(fsync string, pushers int, seed uint64) *cutSoak {
	return &cutSoak{
		fs:      vfs.NewStrictMem(),
		cfg:     Config{Dir: "/data/buffers/sink", Fsync: fsync},
		pushers: pushers,
		rng:     rand.New(rand.NewPCG(seed, 7)),
		next:    make([]uint64, pushers),
		acked:   make([]uint64, pushers),
	}
}

func cutSeq(p int, n uint64) uint64 { return uint64(p)<<40 | n }

// cycle opens the store, checks it, pushes and acks, and cuts the power.
func (s *cutSoak) cycle(t *testing.T, iter int) {
	t.Helper()
	b, err := open(s.cfg, testLog(t), options{fs: s.fs})
	if err != nil {
		t.Fatalf("cut %d: Open = %v", iter, err)
	}
	s.check(t, iter, b)
	if t.Failed() {
		b.Release()
		t.Fatalf("stopped at cut %d (seed from the log line below)", iter)
	}

	// Pushers and a consumer run until the cut, and a little after it.
	ctx, cancel := context.WithCancel(context.Background())
	confirmed := make([]uint64, s.pushers) // numbers below: Push returned
	copy(confirmed, s.next)
	var mu sync.Mutex // guards confirmed and acked
	ops := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	for p := range s.pushers {
		rng := rand.New(rand.NewPCG(s.rng.Uint64(), uint64(p)))
		n := s.next[p]
		wg.Go(func() {
			for ctx.Err() == nil {
				batch := make([]model.Sample, 1+rng.IntN(20))
				for i := range batch {
					batch[i] = model.Sample{Path: "cut/" + strconv.Itoa(p), Value: model.Uint(n), Seq: cutSeq(p, n)}
					n++
				}
				if err := b.Push(ctx, batch); err != nil {
					return // cancelled
				}
				mu.Lock()
				confirmed[p] = n
				mu.Unlock()
				select {
				case ops <- struct{}{}:
				default:
				}
			}
		})
	}
	// The consumer acks a random part and then idles, so a backlog of
	// confirmed samples not acked is there at most cuts.
	crng := rand.New(rand.NewPCG(s.rng.Uint64(), 99))
	budget := crng.IntN(16)
	wg.Go(func() {
		for ; budget > 0; budget-- {
			batch, err := b.Next(ctx, 1+crng.IntN(30))
			if err != nil {
				return
			}
			if err := b.Ack(batch); err != nil {
				t.Errorf("Ack = %v", err)
				return
			}
			mu.Lock()
			s.totals.acked += batch.Len()
			for _, smp := range batch.Samples {
				p := int(smp.Seq >> 40)
				s.acked[p] = max(s.acked[p], smp.Seq&(1<<40-1)+1)
			}
			mu.Unlock()
		}
	})
	// The cut, after a random number of Pushes returned.
	for range 1 + s.rng.IntN(40) {
		<-ops
	}
	// What was confirmed before the cut: read first, as a Push returning
	// after SetIgnoreSyncs may have had its sync ignored.
	mu.Lock()
	atCut := append([]uint64(nil), confirmed...)
	mu.Unlock()
	s.fs.SetIgnoreSyncs(true)
	for range s.rng.IntN(5) { // work on, unsynced
		<-ops
	}
	cancel()
	wg.Wait()
	_ = b.Release()
	s.fs.ResetToSyncedState()
	s.fs.SetIgnoreSyncs(false)
	for p := range s.pushers {
		s.totals.confirmed += int(atCut[p] - s.next[p])
		s.next[p] = atCut[p] // numbers at or above may or may not be back
	}
}

// check reads everything the store holds (nacked) and compares it with
// the model; then the model follows the store.
func (s *cutSoak) check(t *testing.T, iter int, b *Buffer) {
	t.Helper()
	var samples []model.Sample
	if held := b.Stats().Depth; held > 0 {
		batch := next(t, b, held+1) // one batch in flight at a time
		if batch.Len() != held {
			t.Fatalf("cut %d: Next handed out %d samples, Stats says %d held", iter, batch.Len(), held)
		}
		samples = batch.Samples
		defer b.Nack(batch)
	}
	first := make([]int64, s.pushers)
	last := make([]int64, s.pushers)
	for p := range first {
		first[p], last[p] = -1, -1
	}
	for _, smp := range samples {
		p, n := int(smp.Seq>>40), int64(smp.Seq&(1<<40-1))
		switch {
		case last[p] < 0:
			first[p] = n
		case n <= last[p]:
			s.totals.order++
			t.Errorf("cut %d: pusher %d: %d after %d", iter, p, n, last[p])
			continue
		case n != last[p]+1:
			s.totals.lost += int(n - last[p] - 1)
			t.Errorf("cut %d: pusher %d: %d..%d missing", iter, p, last[p]+1, n-1)
		}
		last[p] = n
	}
	for p := range s.pushers {
		// Must be held: [acked, next), what was confirmed and not acked.
		lo, hi := int64(s.acked[p]), int64(s.next[p])
		if lo >= hi {
			if last[p] >= 0 {
				s.totals.dups += int(max(0, min(lo, last[p]+1)-first[p]))
				s.next[p] = max(s.next[p], uint64(last[p]+1))
				s.acked[p] = uint64(first[p])
			}
			continue
		}
		if last[p] < 0 {
			s.totals.lost += int(hi - lo)
			t.Errorf("cut %d: pusher %d: %d..%d confirmed, not acked and gone", iter, p, lo, hi-1)
			continue
		}
		if first[p] > lo {
			s.totals.lost += int(first[p] - lo)
			t.Errorf("cut %d: pusher %d: %d..%d confirmed, not acked and gone", iter, p, lo, first[p]-1)
		}
		if last[p] < hi-1 {
			s.totals.lost += int(hi - 1 - last[p])
			t.Errorf("cut %d: pusher %d: store ends at %d, Push of %d returned", iter, p, last[p], hi-1)
		}
		s.totals.dups += int(max(0, lo-first[p]))
		// Acked samples back in the store are unacked again; pushes that
		// returned after the cut and survived are kept.
		s.acked[p] = uint64(first[p])
		s.next[p] = max(s.next[p], uint64(last[p]+1))
	}
}

// verify checks the store after the last cut.
func (s *cutSoak) verify(t *testing.T, iter int) {
	t.Helper()
	b, err := open(s.cfg, testLog(t), options{fs: s.fs})
	if err != nil {
		t.Fatalf("cut %d: Open = %v", iter, err)
	}
	defer b.Release()
	s.check(t, iter, b)
}
