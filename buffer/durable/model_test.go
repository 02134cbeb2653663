package durable

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
)

// modelSeedsEnv sets how many seeds TestModel runs per configuration (3 by
// default, fast enough for CI under -race). To reproduce a failure, run
// its subtest alone with at least its seed:
//
//	WEIR_MODEL_SEEDS=500 go test -run 'TestModel/drain/seed=417$' ./buffer/durable
const modelSeedsEnv = "WEIR_MODEL_SEEDS"

// TestModel drives a buffer with random pushes, batches of any size, full
// and partial acks, nacks, stale acks, clock jumps and restarts, and
// checks it against what the test knows: after every step depth = pushed
// − acked − dropped; every fifth step and after each restart, the samples
// held (read with Each) are unique, never acked, in push order per region,
// and their record sizes add up to Bytes; every batch is in push order and
// holds nothing acked. At the end a restart without bounds delivers the
// rest, each sample once.
func TestModel(t *testing.T) {
	seeds := 3
	if v := os.Getenv(modelSeedsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", modelSeedsEnv, v)
		}
		seeds = n
	}
	configs := []struct {
		name  string
		cfg   Config
		cache int // options.cacheSamples
	}{
		{"fifo", Config{}, 0},
		{"fifo-nocache", Config{}, -1},
		{"fifo-tinycache", Config{}, 100},
		{"drain", Config{DrainRate: 1e6}, 0},
		{"drain-nocache", Config{DrainRate: 1e6}, -1},
		{"dropoldest", Config{MaxSamples: 3000, Policy: buffer.DropOldest}, 0},
		{"dropoldest-drain", Config{MaxSamples: 3000, Policy: buffer.DropOldest, DrainRate: 1e6}, -1},
		{"maxage", Config{MaxAge: time.Minute}, 0},
		{"maxage-drain-dropoldest", Config{MaxAge: time.Minute, DrainRate: 1e6, MaxSamples: 4000, Policy: buffer.DropOldest}, 0},
	}
	for i, c := range configs {
		for seed := 1; seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", c.name, seed), func(t *testing.T) {
				t.Parallel() // runs share nothing (own clock, store in memory)
				m := newModel(t, c.cfg, c.cache, uint64(seed), uint64(i))
				m.run(120)
			})
		}
	}
}

// modelRun is one random run and what the test knows of it.
type modelRun struct {
	t     *testing.T
	rng   *rand.Rand
	clock *fakeClock
	cfg   Config
	o     options
	b     *Buffer

	// By sample id (slices: maps are slow under -race). 1..nextID-1
	// were pushed.
	nextID int
	size   []int64 // record size
	acked  []bool  // acked by us: never to be seen again
	seen   []bool  // scratch for check

	prev  buffer.Stats    // Acked and Dropped summed over earlier runs
	last  buffer.Batch    // the last batch handed out, for stale acks
	steps strings.Builder // what happened, for the failure message
}

// newModel starts a run; stream makes each configuration's seeds their own.
func newModel(t *testing.T, cfg Config, cache int, seed, stream uint64) *modelRun {
	m := &modelRun{
		t: t, rng: rand.New(rand.NewPCG(seed, stream)), clock: &fakeClock{t: time.Unix(1_700_000_000, 0)},
		cfg: cfg, nextID: 1, size: []int64{0}, acked: []bool{false},
	}
	m.cfg.Dir = "/data/buffers/sink"
	m.cfg.Fsync = FsyncOS // crashes are other tests' business
	// In memory: restarts are most of the cost, the disk none of the point.
	m.o = options{
		fs: vfs.NewMem(), now: m.clock.now, cacheSamples: cache,
		free: func() (int64, error) { return 1 << 40, nil },
	}
	m.open()
	t.Cleanup(func() { _ = m.b.Release() })
	return m
}

func (m *modelRun) logf(format string, args ...any) {
	fmt.Fprintf(&m.steps, format+"\n", args...)
}

func (m *modelRun) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf(format+"\nsteps:\n%s", append(args, m.steps.String())...)
}

func (m *modelRun) open() {
	b, err := open(m.cfg, testLog(m.t), m.o)
	if err != nil {
		m.fatalf("Open = %v", err)
	}
	m.b = b
}

func (m *modelRun) run(steps int) {
	for step := range steps {
		full := step%5 == 4 // reading the whole store every step is slow under -race
		switch op := m.rng.IntN(10); {
		case op < 3:
			m.push()
		case op < 7:
			m.nextAck()
		case op < 8:
			d := time.Duration(m.rng.IntN(40)) * time.Second
			m.logf("clock +%v", d)
			m.clock.add(d)
		case op < 9:
			m.staleAck()
		default:
			m.restart()
			full = true
		}
		m.check(fmt.Sprintf("step %d", step), full)
	}
	m.final()
}

func (m *modelRun) push() {
	n := 1 + m.rng.IntN(1500)
	if m.rng.IntN(3) == 0 {
		n = 1 + m.rng.IntN(20)
	}
	s := make([]model.Sample, n)
	for i := range s {
		id := m.nextID + i
		s[i] = model.Sample{Path: "p", Value: model.Float(float64(id)), Seq: uint64(id), EdgeTime: m.clock.now().UnixNano(), SourceTime: int64(id)}
		m.size = append(m.size, int64(len(appendRecord(nil, &s[i]))))
		m.acked = append(m.acked, false)
	}
	m.logf("push %d..%d", m.nextID, m.nextID+n-1)
	if err := m.b.Push(context.Background(), s); err != nil {
		m.fatalf("Push = %v", err)
	}
	m.nextID += n
}

// nextAck takes a batch (Next must hand one out whenever something is
// held: no bound here waits) and acks all, a prefix or none of it, and
// may nack the rest.
func (m *modelRun) nextAck() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Next returns what is there, or ctx's error at once
	max := 1 + m.rng.IntN(1500)
	batch, err := m.b.Next(ctx, max)
	if err != nil {
		if d := m.b.Stats().Depth; d > 0 {
			m.fatalf("Next = %v with %d samples held", err, d)
		}
		m.logf("next(%d): none", max)
		return
	}
	ids := seqs(batch.Samples)
	for i, id := range ids {
		if id < 1 || id >= m.nextID {
			m.fatalf("Next handed out %d, never pushed", id)
		}
		if m.acked[id] {
			m.fatalf("Next handed out %d again after it was acked (batch %d..%d)", id, ids[0], ids[len(ids)-1])
		}
		if i > 0 && id <= ids[i-1] {
			m.fatalf("batch out of push order: %d after %d", id, ids[i-1])
		}
	}
	k := batch.Len()
	switch m.rng.IntN(4) {
	case 0:
		k = m.rng.IntN(batch.Len() + 1)
	case 1:
		k = -1 // left in flight: the next Next nacks it
	}
	m.logf("next(%d) = %d..%d (%d), ack %d", max, ids[0], ids[len(ids)-1], len(ids), k)
	m.last = batch
	if k < 0 {
		return
	}
	m.ack(batch, k)
	if k < batch.Len() && m.rng.IntN(2) == 0 {
		m.logf("nack")
		m.b.Nack(batch)
	}
}

func (m *modelRun) ack(batch buffer.Batch, k int) {
	if err := m.b.Ack(batch.Prefix(k)); err != nil {
		m.fatalf("Ack = %v", err)
	}
	for _, s := range batch.Samples[:k] {
		m.acked[int(s.Seq)] = true
	}
}

// staleAck acks a prefix of the last batch again, or further than before.
func (m *modelRun) staleAck() {
	if m.last.Len() == 0 || m.rng.IntN(2) == 0 {
		return
	}
	k := m.rng.IntN(m.last.Len() + 1)
	m.logf("stale ack %d of the batch from %d", k, m.last.Samples[0].Seq)
	m.ack(m.last, k)
}

func (m *modelRun) restart() {
	m.logf("restart")
	m.addPrev(m.b.Stats())
	if err := m.b.Release(); err != nil {
		m.fatalf("Release = %v", err)
	}
	m.open()
	m.last = buffer.Batch{}
}

func (m *modelRun) addPrev(st buffer.Stats) {
	m.prev.Acked += st.Acked
	m.prev.Dropped += st.Dropped
}

// check compares the buffer's counts with the model and, if full, what
// the store holds with them.
func (m *modelRun) check(where string, full bool) {
	m.t.Helper()
	st := m.b.Stats()
	acked, dropped := m.prev.Acked+st.Acked, m.prev.Dropped+st.Dropped
	if want := m.nextID - 1 - int(acked) - int(dropped); st.Depth != want {
		m.fatalf("%s: depth %d, want %d (pushed %d, acked %d, dropped %d)", where, st.Depth, want, m.nextID-1, acked, dropped)
	}
	if st.Depth == 0 && st.Bytes != 0 {
		m.fatalf("%s: nothing held, Stats says %d bytes", where, st.Bytes)
	}
	if !full {
		return
	}
	var (
		held     int
		bytes    int64
		lastHist int // the last id held, per region
		lastLive int
	)
	m.seen = append(m.seen[:0], make([]bool, m.nextID)...)
	err := m.b.Each(func(s model.Sample) error {
		id := int(s.Seq)
		last := &lastLive
		if s.Historical {
			last = &lastHist
		}
		switch {
		case id < 1 || id >= m.nextID:
			return fmt.Errorf("%d is held, never pushed", id)
		case m.acked[id]:
			return fmt.Errorf("%d is held after it was acked", id)
		case m.seen[id]:
			return fmt.Errorf("%d is held twice", id)
		case id <= *last:
			return fmt.Errorf("%d is held after %d", id, *last)
		}
		m.seen[id], *last = true, id
		held++
		bytes += m.size[id]
		return nil
	})
	if err != nil {
		m.fatalf("%s: %v", where, err)
	}
	if held != st.Depth || bytes != st.Bytes {
		m.fatalf("%s: the store holds %d samples of %d bytes, Stats says %d of %d", where, held, bytes, st.Depth, st.Bytes)
	}
}

// final restarts without bounds and drains: everything pushed was acked,
// dropped (counted) or is delivered now, once.
func (m *modelRun) final() {
	m.check("before the final restart", true)
	m.addPrev(m.b.Stats())
	if err := m.b.Release(); err != nil {
		m.fatalf("Release = %v", err)
	}
	m.cfg = Config{Dir: m.cfg.Dir, Fsync: FsyncOS}
	m.open()
	st := m.b.Stats()
	m.addPrev(st)
	got := seqs(drainAll(m.t, m.b))
	m.seen = append(m.seen[:0], make([]bool, m.nextID)...)
	for _, id := range got {
		if id < 1 || id >= m.nextID || m.acked[id] || m.seen[id] {
			m.fatalf("final: %d delivered after it was acked, or twice, or never pushed", id)
		}
		m.seen[id] = true
	}
	if len(got)+int(m.prev.Acked)+int(m.prev.Dropped) != m.nextID-1 {
		m.fatalf("final: %d delivered + %d acked + %d dropped != %d pushed", len(got), m.prev.Acked, m.prev.Dropped, m.nextID-1)
	}
	m.t.Logf("pushed %d, acked %d, dropped %d, delivered at the end %d", m.nextID-1, m.prev.Acked, m.prev.Dropped, len(got))
}
