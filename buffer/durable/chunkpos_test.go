package durable

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
)

// recordBytes is what samples ids take in Stats.Bytes.
func recordBytes(base time.Time, ids ...int) int64 {
	var n int64
	for _, s := range mk(base, ids...) {
		n += int64(len(appendRecord(nil, &s)))
	}
	return n
}

// Batches, acks and nacks at positions inside chunks, and what a restart
// makes of a chunk acked or dropped in part: no acked or dropped sample
// comes back, nothing held is lost, counts stay exact.
func TestPositionsInsideChunks(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	type step struct {
		max    int // Next's max
		ack    int // Ack the first ack samples (a Prefix), Nack the rest; -1 acks all
		want   []int
		reopen bool // Release and reopen before this step's Next
	}
	tests := []struct {
		name   string
		cache  int // options.cacheSamples
		pushes [][]int
		steps  []step
		// after the steps, a reopen delivers rest and counts acked
		rest []int
	}{
		{
			name: "batches smaller than a chunk", cache: -1, pushes: [][]int{span(1, 100)},
			steps: []step{{30, -1, span(1, 30), false}, {30, -1, span(31, 60), false}, {30, -1, span(61, 90), false}},
			rest:  span(91, 100),
		},
		{
			name: "prefix acks mid-chunk, then nack", cache: -1, pushes: [][]int{span(1, 50)},
			steps: []step{{40, 15, span(1, 40), false}, {10, 3, span(16, 25), false}, {100, 0, span(19, 50), false}},
			rest:  span(19, 50),
		},
		{
			name: "restart after a mid-chunk ack", cache: -1, pushes: [][]int{span(1, 100)},
			steps: []step{{37, -1, span(1, 37), false}, {5, 2, span(38, 42), true}},
			rest:  span(40, 100),
		},
		{
			name: "batches span chunks, from the cache", cache: 0, pushes: [][]int{span(1, 10), span(11, 20), span(21, 30)},
			steps: []step{{15, -1, span(1, 15), false}, {12, 7, span(16, 27), false}},
			rest:  span(23, 30),
		},
		{
			name: "restart twice, acking mid-chunk each time", cache: 0, pushes: [][]int{span(1, 40), span(41, 80)},
			steps: []step{{10, -1, span(1, 10), false}, {15, -1, span(11, 25), true}, {20, -1, span(26, 45), true}, {3, 1, span(46, 48), true}},
			rest:  span(47, 80),
		},
		{
			name: "more chunks than point deletes", cache: 0, pushes: func() (p [][]int) {
				for i := 1; i <= 600; i += 2 {
					p = append(p, []int{i, i + 1})
				}
				return p
			}(),
			steps: []step{{555, -1, span(1, 555), false}},
			rest:  span(556, 600),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir() + "/sink"
			cfg := Config{Dir: dir, Fsync: FsyncOS}
			o := options{cacheSamples: tt.cache}
			b, err := open(cfg, testLog(t), o)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b.Release() }()
			for _, p := range tt.pushes {
				push(t, b, mk(base, p...))
			}
			acked := 0
			for i, s := range tt.steps {
				if s.reopen {
					if err := b.Release(); err != nil {
						t.Fatal(err)
					}
					if b, err = open(cfg, testLog(t), o); err != nil {
						t.Fatal(err)
					}
				}
				batch := next(t, b, s.max)
				if got := seqs(batch.Samples); !slices.Equal(got, s.want) {
					t.Fatalf("step %d: Next(%d) = %v, want %v", i, s.max, got, s.want)
				}
				n := s.ack
				if n < 0 {
					n = batch.Len()
				}
				if err := b.Ack(batch.Prefix(n)); err != nil {
					t.Fatal(err)
				}
				acked += n
				if n < batch.Len() {
					b.Nack(batch)
				}
			}
			total := 0
			for _, p := range tt.pushes {
				total += len(p)
			}
			if st := b.Stats(); st.Depth != total-acked || st.Bytes != recordBytes(base, tt.rest...) {
				t.Fatalf("before reopening: depth %d, bytes %d; want %d, %d", st.Depth, st.Bytes, total-acked, recordBytes(base, tt.rest...))
			}
			if err := b.Release(); err != nil {
				t.Fatal(err)
			}
			b, err = open(cfg, testLog(t), o)
			if err != nil {
				t.Fatal(err)
			}
			st := b.Stats()
			if st.Depth != len(tt.rest) || st.Backlog != len(tt.rest) || st.Bytes != recordBytes(base, tt.rest...) || st.Dropped != 0 {
				t.Fatalf("after reopening: stats %+v, want depth = backlog = %d, bytes %d, nothing dropped", st, len(tt.rest), recordBytes(base, tt.rest...))
			}
			if len(tt.rest) > 0 && st.OldestEdgeTime != base.Add(time.Duration(tt.rest[0])*time.Second).UnixNano() {
				t.Fatalf("oldest edge time is not sample %d's", tt.rest[0])
			}
			if got := seqs(drainAll(t, b)); !slices.Equal(got, tt.rest) {
				t.Fatalf("after reopening, delivered %v, want %v", got, tt.rest)
			}
			if keys := chunkKeys(t, b.db); len(keys) != 0 {
				t.Fatalf("keys %v left after acking everything", keys)
			}
		})
	}
}

// drop_oldest and max_age cut chunks in two: after a restart the samples
// they dropped stay dropped.
func TestDropsInsideChunksStayDropped(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name        string
		cfg         Config
		run         func(t *testing.T, b *Buffer, clock *fakeClock)
		wantDropped buffer.Stats // the counters before the restart
		want        []int        // delivered after it
	}{
		{
			name: "drop_oldest", cfg: Config{MaxSamples: 100, Policy: buffer.DropOldest},
			run: func(t *testing.T, b *Buffer, _ *fakeClock) {
				push(t, b, mk(base, span(1, 80)...))
				push(t, b, mk(base, span(81, 130)...)) // drops 1..30, mid-chunk
			},
			wantDropped: buffer.Stats{Dropped: 30, DroppedFull: 30},
			want:        span(31, 130),
		},
		{
			name: "drop_oldest by bytes", cfg: Config{MaxBytes: 1 << 20, Policy: buffer.DropOldest},
			run: func(t *testing.T, b *Buffer, _ *fakeClock) {
				s := mk(base, span(1, 1500)...) // ~760 bytes each: 1 MiB holds ~1380
				for i := range s {
					s[i].Quality.Reason = string(make([]byte, 700))
				}
				push(t, b, s[:1000])
				push(t, b, s[1000:])
			},
			wantDropped: buffer.Stats{}, // checked as dropped_full + depth below
		},
		{
			name: "max_age", cfg: Config{MaxAge: time.Minute},
			run: func(t *testing.T, b *Buffer, clock *fakeClock) {
				push(t, b, mk(base, span(1, 100)...))
				clock.add(90 * time.Second) // 1..29 too old
				_ = b.Stats()
			},
			wantDropped: buffer.Stats{Dropped: 29, DroppedAge: 29},
			want:        span(30, 100),
		},
		{
			name: "max_age with a batch in flight", cfg: Config{MaxAge: time.Minute},
			run: func(t *testing.T, b *Buffer, clock *fakeClock) {
				push(t, b, mk(base, span(1, 100)...))
				batch := next(t, b, 50)
				clock.add(90 * time.Second)
				_ = b.Stats()
				if err := b.Ack(batch.Prefix(40)); err != nil { // 30..40 acked
					t.Fatal(err)
				}
				b.Nack(batch)
			},
			wantDropped: buffer.Stats{Dropped: 29, DroppedAge: 29},
			want:        span(41, 100),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: base}
			cfg := tt.cfg
			cfg.Dir, cfg.Fsync = t.TempDir()+"/sink", FsyncOS
			b, err := open(cfg, testLog(t), options{now: clock.now})
			if err != nil {
				t.Fatal(err)
			}
			tt.run(t, b, clock)
			st := b.Stats()
			if tt.want == nil { // by bytes: whatever fitted, the newest
				if st.DroppedFull == 0 || int(st.DroppedFull)+st.Depth != 1500 {
					t.Fatalf("stats %+v, want dropped_full + depth = 1500", st)
				}
				tt.want = span(1500-st.Depth+1, 1500)
			} else if st.Dropped != tt.wantDropped.Dropped || st.DroppedFull != tt.wantDropped.DroppedFull || st.DroppedAge != tt.wantDropped.DroppedAge {
				t.Fatalf("stats %+v, want %+v", st, tt.wantDropped)
			}
			if err := b.Release(); err != nil {
				t.Fatal(err)
			}
			// Reopened without max_age and bounds: only the store speaks.
			b = openT(t, Config{Dir: cfg.Dir}, options{now: clock.now})
			if st := b.Stats(); st.Depth != len(tt.want) || st.Dropped != 0 {
				t.Fatalf("after reopening: stats %+v, want depth %d and nothing dropped", st, len(tt.want))
			}
			if got := seqs(drainAll(t, b)); !slices.Equal(got, tt.want) {
				t.Fatalf("after reopening, delivered %v, want %v", got, tt.want)
			}
		})
	}
}

// With a drain rate both regions are cut mid-chunk at once; a restart
// brings back neither region's acked samples.
func TestBothRegionsCutMidChunk(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{t: base}
	b, cfg := reopenBehindBacklog(t, base, options{now: clock.now})
	ackPrefix := func(max, n int, want []int) {
		t.Helper()
		batch := next(t, b, max)
		if got := seqs(batch.Samples); !slices.Equal(got, want) {
			t.Fatalf("Next = %v, want %v", got, want)
		}
		if err := b.Ack(batch.Prefix(n)); err != nil {
			t.Fatal(err)
		}
		b.Nack(batch)
	}
	ackPrefix(20, 20, span(1, 20))          // the backlog, cut mid-chunk
	push(t, b, mk(base, span(101, 200)...)) // live, one chunk
	ackPrefix(30, 30, span(101, 130))       // live first, cut mid-chunk
	ackPrefix(10, 5, span(131, 140))        // a prefix
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, Config{Dir: cfg.Dir}, options{now: clock.now})
	want := append(span(21, 100), span(136, 200)...)
	if st := b.Stats(); st.Depth != len(want) || st.Bytes != recordBytes(base, want...) {
		t.Fatalf("after reopening: stats %+v, want depth %d bytes %d", st, len(want), recordBytes(base, want...))
	}
	if got := seqs(drainAll(t, b)); !slices.Equal(got, want) {
		t.Fatalf("after reopening, delivered %v, want %v", got, want)
	}
}

// A record damaged inside a chunk after Open read it: Next drops it alone
// (counted), delivers the rest of the chunk, and a restart neither
// delivers nor counts it again.
func TestCorruptRecordMidChunkAtRuntime(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	dir := t.TempDir() + "/sink"
	cfg := Config{Dir: dir, Fsync: FsyncOS}
	b, err := open(cfg, testLog(t), options{cacheSamples: -1})
	if err != nil {
		t.Fatal(err)
	}
	push(t, b, mk(base, span(1, 20)...))
	damageRecord(t, b.db, 5) // sample 6
	var got []int
	for b.Stats().Depth > 0 {
		batch := next(t, b, 100)
		got = append(got, seqs(batch.Samples)...)
		if err := b.Ack(batch); err != nil {
			t.Fatal(err)
		}
	}
	want := append(span(1, 5), span(7, 20)...)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if st := b.Stats(); st.DroppedCorrupt != 1 || st.Dropped != 1 || st.Acked != 19 || st.Bytes != 0 {
		t.Fatalf("stats %+v, want one corrupt, 19 acked, no bytes left", st)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, cfg, options{})
	if st := b.Stats(); st.Depth != 0 || st.DroppedCorrupt != 0 {
		t.Fatalf("after reopening: stats %+v, want nothing", st)
	}
}

// A chunk whose header is damaged is dropped whole at open, counted by
// its header's count; its neighbours are delivered.
func TestCorruptChunkHeader(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	dir := t.TempDir() + "/sink"
	b, err := Open(Config{Dir: dir}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	push(t, b, mk(base, span(1, 10)...))
	push(t, b, mk(base, span(11, 30)...))
	push(t, b, mk(base, span(31, 40)...))
	last, v := chunkAt(t, b.db, 15)
	v[2] ^= 0x40 // the first record length: the header checksum fails
	if err := b.db.Set(recKey(nil, last), v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, Config{Dir: dir}, options{})
	want := append(span(1, 10), span(31, 40)...)
	if st := b.Stats(); st.DroppedCorrupt != 20 || st.Depth != len(want) {
		t.Fatalf("stats %+v, want 20 corrupt and %d held", st, len(want))
	}
	if got := seqs(drainAll(t, b)); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

// A store written by the previous format (a key per sample) opens with its
// backlog, takes new samples in chunks after it, and is marked format 2.
func TestOpensFormat1Store(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	dir := t.TempDir() + "/sink"
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{testLog(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte(formatKey), []byte(formatV1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	old := mk(base, span(1, 50)...)
	for i := range old { // acked before the upgrade: positions 0..9 are gone
		if i < 10 {
			continue
		}
		if err := db.Set(recKey(nil, uint64(i)), appendRecord(nil, &old[i]), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := Config{Dir: dir}
	b, err := Open(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Depth != 40 || st.Backlog != 40 || st.Bytes != recordBytes(base, span(11, 50)...) {
		t.Fatalf("format-1 store opened with %+v, want its 40 samples", st)
	}
	push(t, b, mk(base, span(51, 60)...))
	batch := next(t, b, 25) // 11..35, old records
	if got := seqs(batch.Samples); !slices.Equal(got, span(11, 35)) || !batch.Samples[0].Historical {
		t.Fatalf("Next = %v, want 11..35 historical", got)
	}
	if err := b.Ack(batch.Prefix(20)); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, cfg, options{})
	v, closer, err := b.db.Get([]byte(formatKey))
	if err != nil || string(v) != formatV2 {
		t.Fatalf("format marker %q, %v; want %s", v, err, formatV2)
	}
	closer.Close()
	if got := seqs(drainAll(t, b)); !slices.Equal(got, span(31, 60)) {
		t.Fatalf("delivered %v, want 31..60", got)
	}
}

// A store of a newer format is refused and left as it is.
func TestNewerFormatRefused(t *testing.T) {
	dir := t.TempDir() + "/sink"
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{testLog(t)}})
	if err != nil {
		t.Fatal(err)
	}
	rec := appendRecord(nil, &model.Sample{Path: "x"})
	if err := errors.Join(db.Set([]byte(formatKey), []byte("3"), pebble.Sync), db.Set(recKey(nil, 0), rec, pebble.Sync), db.Close()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir}, testLog(t)); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("Open = %v, want ErrNewerFormat", err)
	}
}

// The heads marker written by an Ack that slips in while a Push applies a
// drop_oldest batch (carrying the marker as it was before the Ack) is not
// lost: acked samples stay acked after a restart.
func TestHeadsMarkerNotOverwrittenByPush(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	dir := t.TempDir() + "/sink"
	cfg := Config{Dir: dir, MaxSamples: 10, Fsync: FsyncOS}
	var b *Buffer
	var inFlight buffer.Batch
	acks := 0
	o := options{beforeApply: func() {
		if inFlight.Len() > 0 && acks == 0 {
			acks++
			if err := b.Ack(inFlight); err != nil {
				t.Error(err)
			}
		}
	}}
	b, err := open(cfg, testLog(t), o)
	if err != nil {
		t.Fatal(err)
	}
	push(t, b, mk(base, span(1, 10)...))
	inFlight = next(t, b, 4)     // 1..4
	push(t, b, mk(base, 11, 12)) // drops 1, 2; the Ack of 1..4 slips in
	if st := b.Stats(); st.Depth != 8 || st.Acked != 2 || st.Dropped != 2 {
		t.Fatalf("stats %+v, want 8 held, 2 acked, 2 dropped", st)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, Config{Dir: dir}, options{})
	if got := seqs(drainAll(t, b)); !slices.Equal(got, span(5, 12)) {
		t.Fatalf("after reopening, delivered %v, want 5..12", got)
	}
}
