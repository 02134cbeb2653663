package durable

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

// Every loss is counted, and only losses: these tests put unreadable
// chunks where the counting is easy to get wrong (gaps in a backlog, a
// chunk acked in part, a salvage) and check dropped_corrupt, depth and
// bytes to the sample.

// breakHeader damages the header of the chunk holding pos (its first
// record length), so that the chunk's checksum fails but its sample count
// still reads.
func breakHeader(t *testing.T, db *pebble.DB, pos uint64) {
	t.Helper()
	last, v := chunkAt(t, db, pos)
	v[2] ^= 0x40
	if err := db.Set(recKey(nil, last), v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// A chunk that goes bad after Open, met by Next in a backlog with a gap
// before it (chunks of the previous run acked while live, drain_rate):
// only its own samples are dropped and counted, the rest is delivered,
// and Bytes follows exactly. With a second bad chunk further on the first
// drop can only estimate; the second makes the counts exact again.
func TestBadChunkAfterBacklogGap(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		upTo int   // samples pushed in the second run: 101..upTo
		bad  []int // samples whose chunk goes bad
		want []int // delivered from the backlog after 1..100
	}{
		{"one bad chunk", 400, []int{250}, span(301, 400)},
		{"two bad chunks", 500, []int{250, 350}, span(401, 500)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: base}
			o := options{now: clock.now, cacheSamples: -1}
			b, cfg := reopenBehindBacklog(t, base, o)
			for i := 101; i <= tt.upTo; i += 100 { // a chunk each
				push(t, b, mk(base, span(i, i+99)...))
			}
			batch := next(t, b, 100) // live first: 101..200, a whole chunk
			if got := seqs(batch.Samples); !slices.Equal(got, span(101, 200)) {
				t.Fatalf("Next = %v, want 101..200", got)
			}
			if err := b.Ack(batch); err != nil {
				t.Fatal(err)
			}
			if err := b.Release(); err != nil {
				t.Fatal(err)
			}
			b = openT(t, cfg, o) // backlog: 1..100, a gap, 201..upTo
			if st := b.Stats(); st.Depth != tt.upTo-100 {
				t.Fatalf("after reopening: stats %+v, want depth %d", st, tt.upTo-100)
			}
			batch = next(t, b, 100)
			if got := seqs(batch.Samples); !slices.Equal(got, span(1, 100)) {
				t.Fatalf("Next = %v, want 1..100", got)
			}
			if err := b.Ack(batch); err != nil {
				t.Fatal(err)
			}
			for _, id := range tt.bad {
				breakHeader(t, b.db, uint64(id-1))
			}
			lost := uint64(100 * len(tt.bad))

			batch = next(t, b, 1000) // drops the bad chunks, then delivers
			if got := seqs(batch.Samples); !slices.Equal(got, tt.want) {
				t.Fatalf("Next = %v, want %v", got, tt.want)
			}
			st := b.Stats()
			if st.DroppedCorrupt != lost || st.Dropped != lost || st.Depth != len(tt.want) || st.Bytes != recordBytes(base, tt.want...) {
				t.Fatalf("stats %+v, want %d corrupt, depth %d, bytes %d", st, lost, len(tt.want), recordBytes(base, tt.want...))
			}
			if err := b.Ack(batch); err != nil {
				t.Fatal(err)
			}
			if st := b.Stats(); st.Depth != 0 || st.Bytes != 0 {
				t.Fatalf("after acking everything: stats %+v, want depth 0, bytes 0", st)
			}
			if err := b.Release(); err != nil {
				t.Fatal(err)
			}
			b = openT(t, cfg, o)
			if st := b.Stats(); st.Depth != 0 || st.DroppedCorrupt != 0 || st.Bytes != 0 {
				t.Fatalf("after reopening: stats %+v, want nothing held or counted again", st)
			}
		})
	}
}

// At open, a bad chunk holding the live head (drain_rate, the backlog not
// yet replayed) counts only the samples after the head: those before it
// were acked, not lost.
func TestOpenCountsOnlyHeldPartOfBadLiveChunk(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{t: base}
	b, cfg := reopenBehindBacklog(t, base, options{now: clock.now})
	dir := cfg.Dir
	push(t, b, mk(base, span(101, 200)...))
	batch := next(t, b, 50) // live first: 101..150, half the chunk
	if got := seqs(batch.Samples); !slices.Equal(got, span(101, 150)) {
		t.Fatalf("Next = %v, want 101..150", got)
	}
	if err := b.Ack(batch); err != nil {
		t.Fatal(err)
	}
	breakHeader(t, b.db, 150)
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, Config{Dir: dir}, options{now: clock.now})
	if st := b.Stats(); st.DroppedCorrupt != 50 || st.Dropped != 50 || st.Depth != 100 || st.Bytes != recordBytes(base, span(1, 100)...) {
		t.Fatalf("stats %+v, want 50 corrupt (151..200; 101..150 were acked) and 1..100 held", st)
	}
	if got := seqs(drainAll(t, b)); !slices.Equal(got, span(1, 100)) {
		t.Fatalf("delivered %v, want 1..100", got)
	}
}

// salvage counts what it cannot copy as scan would: an unreadable chunk
// by its header (not reaching before the heads marker's live head), a bad
// record alone, a key that holds no position as one.
func TestSalvageCounts(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name      string
		heads     *heads
		wantSaved int
		wantLost  uint64
		want      []int
	}{
		{"no marker", nil, 19, 20 + 1 + 1, append(span(1, 10), append(span(31, 35), span(37, 40)...)...)},
		{"live head in the bad chunk", &heads{back: 0, live: 15}, 19, 15 + 1 + 1, append(span(1, 10), append(span(31, 35), span(37, 40)...)...)},
		{"backlog acked in part", &heads{back: 5, live: 5}, 14, 20 + 1 + 1, append(span(6, 10), append(span(31, 35), span(37, 40)...)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, err := pebble.Open(filepath.Join(dir, "src"), &pebble.Options{Logger: pebbleLogger{testLog(t)}})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			bad := encodeChunk(29, mk(base, span(11, 30)...)) // positions 10..29
			bad[2] ^= 0x40
			damaged := encodeChunk(39, mk(base, span(31, 40)...))
			c, _ := parseChunk(39, damaged, nil)
			rec := c.rec(c.index(35)) // sample 36
			rec[len(rec)-1] ^= 0xff
			wb := src.NewBatch()
			_ = wb.Set(recKey(nil, 9), encodeChunk(9, mk(base, span(1, 10)...)), nil)
			_ = wb.Set(recKey(nil, 29), bad, nil)
			_ = wb.Set(recKey(nil, 39), damaged, nil)
			_ = wb.Set([]byte{recPrefix, 1, 2}, []byte("no position"), nil)
			if tt.heads != nil {
				b := &Buffer{}
				b.putHeadsAt(wb, *tt.heads)
			}
			if err := src.Apply(wb, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			dst, err := pebble.Open(filepath.Join(dir, "dst"), &pebble.Options{Logger: pebbleLogger{testLog(t)}})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			saved, lost, err := salvage(src, dst, testLog(t))
			if err != nil || saved != tt.wantSaved || lost != tt.wantLost {
				t.Fatalf("salvage = %d saved, %d lost, %v; want %d, %d", saved, lost, err, tt.wantSaved, tt.wantLost)
			}
			var got []int
			var d decoder
			if err := walk(dst, 0, 100, 100, new([]int32), func(_ uint64, rec []byte, _ uint64) bool {
				s, err := d.decode(rec)
				if err != nil {
					t.Fatalf("salvaged a bad record: %v", err)
				}
				got = append(got, int(s.Seq))
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("salvaged %v, want %v", got, tt.want)
			}
		})
	}
}

// A store Pebble cannot read to the end is salvaged, and the unreadable
// chunks and records met before the damage count as dropped_corrupt.
func TestSalvageCountedInStats(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	dir := t.TempDir() + "/sink"
	b, err := Open(Config{Dir: dir, Fsync: FsyncOS}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4000; i += 10 { // 400 chunks, many sstable blocks
		push(t, b, mk(base, span(i, i+9)...))
	}
	breakHeader(t, b.db, 14)  // samples 11..20
	damageRecord(t, b.db, 24) // sample 25
	if err := b.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	// Damage the sstable past its middle: the data blocks before it read.
	ssts := storeFiles(t, dir, ".sst")
	if len(ssts) != 1 {
		t.Fatalf("want one sstable, have %v", ssts)
	}
	data, err := os.ReadFile(ssts[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) * 3 / 5; i < len(data)*3/5+100; i++ {
		data[i] ^= 0x5a
	}
	if err := os.WriteFile(ssts[0], data, 0o644); err != nil {
		t.Fatal(err)
	}

	b = openT(t, Config{Dir: dir}, options{})
	st := b.Stats()
	if st.Quarantine == "" {
		t.Fatalf("stats %+v, want the store quarantined", st)
	}
	if st.DroppedCorrupt != 11 || st.Dropped != 11 {
		t.Fatalf("stats %+v, want 11 corrupt (10 in the bad chunk, 1 record)", st)
	}
	got := seqs(drainAll(t, b))
	if n := len(got); n < 100 || n > 3000 || !slices.Equal(got, append(append(span(1, 10), span(21, 24)...), span(26, n+11)...)) {
		t.Fatalf("salvaged %d samples %v…, want 1..10, 21..24, 26..n", len(got), got[:min(len(got), 30)])
	}
}
