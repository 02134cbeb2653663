package durable

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/buffer/buffertest"
	"github.com/weir-edge/weir/model"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperProcess() // the child of the kill -9 test; never returns
	}
	if os.Getenv(ackHelperEnv) != "" {
		ackHelperProcess() // the child of the kill -9 after ack test; never returns
	}
	goleak.VerifyTestMain(m)
}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// openT opens a buffer released at cleanup.
func openT(t testing.TB, cfg Config, o options) *Buffer {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir() + "/sink"
	}
	b, err := open(cfg, testLog(t), o)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() {
		if err := b.Release(); err != nil {
			t.Errorf("Release = %v", err)
		}
	})
	return b
}

// reopenBehindBacklog opens a buffer with a drain rate in a new directory,
// pushes samples 1..100 and reopens it: 1..100 is then backlog (replayed
// at the drain rate) and whatever is pushed next is live. The caller
// releases the buffer; cfg opens it again.
func reopenBehindBacklog(t testing.TB, base time.Time, o options) (b *Buffer, cfg Config) {
	t.Helper()
	cfg = Config{Dir: t.TempDir() + "/sink", DrainRate: 1000, Fsync: FsyncOS}
	b, err := open(cfg, testLog(t), o)
	if err != nil {
		t.Fatal(err)
	}
	push(t, b, mk(base, span(1, 100)...))
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	if b, err = open(cfg, testLog(t), o); err != nil {
		t.Fatal(err)
	}
	return b, cfg
}

func TestConformance(t *testing.T) {
	for _, fsync := range []string{FsyncAlways, FsyncGroup, FsyncOS} {
		t.Run(fsync, func(t *testing.T) {
			buffertest.Run(t, func(t *testing.T, capacity int, p buffer.Policy) buffer.Buffer {
				return openT(t, Config{MaxSamples: capacity, Policy: p, Fsync: fsync}, options{})
			})
		})
	}
	// The same behaviour whether Next is served from the tail cache, from
	// the store, or from both in one run (a cache smaller than a batch).
	for name, size := range map[string]int{"no-cache": -1, "tiny-cache": 3} {
		t.Run(name, func(t *testing.T) {
			buffertest.Run(t, func(t *testing.T, capacity int, p buffer.Policy) buffer.Buffer {
				return openT(t, Config{MaxSamples: capacity, Policy: p, Fsync: FsyncOS}, options{cacheSamples: size})
			})
		})
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mk builds samples numbered ids, with edge time base+id seconds.
func mk(base time.Time, ids ...int) []model.Sample {
	out := make([]model.Sample, len(ids))
	for i, id := range ids {
		out[i] = model.Sample{
			Path: "plant/line1/temp", Value: model.Float(float64(id) / 2), Seq: uint64(id),
			EdgeTime: base.Add(time.Duration(id) * time.Second).UnixNano(), SourceTime: int64(id),
		}
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func seqs(s []model.Sample) []int {
	out := make([]int, len(s))
	for i := range s {
		out[i] = int(s[i].Seq)
	}
	return out
}

func push(t testing.TB, b *Buffer, s []model.Sample) {
	t.Helper()
	if err := b.Push(context.Background(), s); err != nil {
		t.Fatalf("Push = %v", err)
	}
}

func next(t testing.TB, b *Buffer, max int) buffer.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	batch, err := b.Next(ctx, max)
	if err != nil {
		t.Fatalf("Next = %v", err)
	}
	return batch
}

// drainAll acks everything held and returns the samples in order.
func drainAll(t testing.TB, b *Buffer) []model.Sample {
	t.Helper()
	var out []model.Sample
	for b.Stats().Depth > 0 {
		batch := next(t, b, 100)
		out = append(out, batch.Samples...)
		if err := b.Ack(batch); err != nil {
			t.Fatalf("Ack = %v", err)
		}
	}
	return out
}

func TestSampleConfig(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader(SampleConfig))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode sample.yaml: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if cfg.MaxBytes != 1<<30 || cfg.Fsync != FsyncGroup || cfg.MaxAge != 168*time.Hour {
		t.Fatalf("sample decoded to %+v", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error, one per problem
	}{
		{"zero is valid", Config{}, nil},
		{"all set", Config{Type: "disk", MaxBytes: 1 << 20, MaxAge: time.Hour, Policy: buffer.DropOldest, Fsync: FsyncOS, GroupCommit: time.Millisecond, DrainRate: 10}, nil},
		{"bad type", Config{Type: "memory"}, []string{"type: unknown buffer type"}},
		{"tiny max_bytes", Config{MaxBytes: 100}, []string{"max_bytes: 100 is below"}},
		{"negatives", Config{MaxBytes: -1, MaxSamples: -1, MaxAge: -1, DrainRate: -1, MinFreeBytes: -1},
			[]string{"max_bytes: must not", "max_samples: must not", "max_age: must not", "drain_rate: must not", "min_free_bytes: must not"}},
		{"short max_age", Config{MaxAge: time.Millisecond}, []string{"max_age: 1ms is below"}},
		{"bad policy and fsync", Config{Policy: "lifo", Fsync: "never", GroupCommit: time.Minute},
			[]string{"policy: unknown overflow policy", "fsync: unknown fsync policy", "group_commit: must be between"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want it to mention %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("Validate reported %d problems, want %d: %v", n, len(tt.want), err)
			}
		})
	}
}

func TestRestartRedeliversUnackedAsHistorical(t *testing.T) {
	dir := t.TempDir() + "/sink"
	base := time.Unix(1_700_000_000, 0)
	b, err := Open(Config{Dir: dir}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	push(t, b, mk(base, span(1, 10)...))
	if err := b.Ack(next(t, b, 3)); err != nil { // 1..3 delivered
		t.Fatal(err)
	}
	inFlight := next(t, b, 2) // 4, 5 handed out, never confirmed
	if got := seqs(inFlight.Samples); !slices.Equal(got, []int{4, 5}) {
		t.Fatalf("in flight %v", got)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, Config{Dir: dir}, options{})
	st := b.Stats()
	if st.Depth != 7 || st.Backlog != 7 || st.OldestEdgeTime != base.Add(4*time.Second).UnixNano() || st.Bytes <= 0 {
		t.Fatalf("after restart stats = %+v, want depth=backlog=7, oldest = sample 4", st)
	}
	push(t, b, mk(base, 11)) // live, after the backlog in FIFO mode
	got := drainAll(t, b)
	if !slices.Equal(seqs(got), span(4, 11)) {
		t.Fatalf("redelivered %v, want 4..11", seqs(got))
	}
	for _, s := range got {
		want := mk(base, int(s.Seq))[0]
		want.Historical = s.Seq <= 10
		if s.Path != want.Path || !s.Value.Equal(want.Value) || s.EdgeTime != want.EdgeTime ||
			s.SourceTime != want.SourceTime || s.Historical != want.Historical {
			t.Errorf("sample %d = %+v, want %+v", s.Seq, s, want)
		}
	}
}

func TestMaxAgeDropsWithCauseAge(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{t: base}
	b := openT(t, Config{MaxAge: time.Minute}, options{now: clock.now})
	// Samples 1..100 have edge times base+1s..base+100s.
	push(t, b, mk(base, span(1, 100)...))
	if st := b.Stats(); st.DroppedAge != 0 || st.Depth != 100 {
		t.Fatalf("fresh stats = %+v", st)
	}
	clock.add(90 * time.Second) // cutoff base+30s: 1..29 are too old
	st := b.Stats()
	if st.DroppedAge != 29 || st.Dropped != 29 || st.Depth != 71 || st.OldestEdgeTime != base.Add(30*time.Second).UnixNano() {
		t.Fatalf("stats = %+v, want dropped_age=29 depth=71", st)
	}
	// A clock jump forward expires everything; order stays by sequence.
	clock.add(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if batch, err := b.Next(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next after everything expired = %v, %v; want nothing", seqs(batch.Samples), err)
	}
	if st := b.Stats(); st.DroppedAge != 100 || st.Depth != 0 || st.Bytes != 0 {
		t.Fatalf("stats = %+v, want all 100 expired", st)
	}
}

// PushAsync stores in call order under the caller's lock and is durable
// once its wait returns; concurrent callers share syncs.
func TestPushAsyncKeepsOrderAndIsDurable(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	dir := t.TempDir() + "/sink"
	cfg := Config{Dir: dir, Fsync: FsyncGroup, GroupCommit: 2 * time.Millisecond}
	b := openT(t, cfg, options{})
	var mu sync.Mutex // the engine's lock
	next := 1
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				mu.Lock()
				n := next
				next++
				wait, err := b.PushAsync(context.Background(), mk(base, n))
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if wait == nil {
					t.Error("group commit returned no wait")
					return
				}
				if err := wait(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, cfg, options{})
	var got []int
	for len(got) < 100 {
		ns, _ := nextAck(t, b)
		got = append(got, ns...)
	}
	if !slices.Equal(got, span(1, 100)) {
		t.Fatalf("order after reopen: %v", got)
	}
}
