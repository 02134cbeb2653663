package durable

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/weir-edge/weir/model"
)

// encodeChunk is the chunk of samples whose last position is last.
func encodeChunk(last uint64, samples []model.Sample) []byte {
	var body []byte
	offs := []int{0}
	for i := range samples {
		body = appendRecord(body, &samples[i])
		offs = append(offs, len(body))
	}
	return append(appendChunkHeader(nil, offs), body...)
}

func TestChunkRoundTrip(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	long := model.Sample{Path: "big", Value: model.String(string(make([]byte, 300)))} // lengths over one byte
	tests := []struct {
		name    string
		last    uint64
		samples []model.Sample
	}{
		{"one", 0, mk(base, 1)},
		{"several", 41, mk(base, span(1, 10)...)},
		{"full", 5000, mk(base, span(1, maxChunkSamples)...)},
		{"long records", 7, append(mk(base, 1, 2), long, long)},
		{"zero sample", 3, []model.Sample{{}}},
	}
	var d decoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := encodeChunk(tt.last, tt.samples)
			c, err := parseChunk(tt.last, v, nil)
			if err != nil {
				t.Fatalf("parseChunk = %v", err)
			}
			if c.n() != len(tt.samples) || c.last != tt.last || c.first != tt.last-uint64(len(tt.samples)-1) {
				t.Fatalf("chunk of %d at %d..%d, want %d ending at %d", c.n(), c.first, c.last, len(tt.samples), tt.last)
			}
			for i := range tt.samples {
				got, err := d.decode(c.rec(i))
				if err != nil || !sameSample(got, tt.samples[i]) {
					t.Fatalf("record %d = %+v, %v; want %+v", i, got, err, tt.samples[i])
				}
			}
			// A run re-encoded holds the same records, at the same positions.
			lo, hi := c.n()/3, c.n()
			part, err := parseChunk(c.pos(hi-1), appendRun(nil, &c, lo, hi), nil)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if part.first != c.pos(lo) || part.n() != hi-lo {
				t.Fatalf("run %d..%d parsed as %d samples from %d", lo, hi, part.n(), part.first)
			}
			for i := lo; i < hi; i++ {
				if !slices.Equal(part.rec(i-lo), c.rec(i)) {
					t.Fatalf("run record %d differs", i)
				}
			}
		})
	}
}

// A format-1 value (one record) is a chunk of one sample.
func TestChunkReadsFormat1Record(t *testing.T) {
	s := model.Sample{Path: "old", Value: model.Int(7), Seq: 3}
	rec := appendRecord(nil, &s)
	c, err := parseChunk(12, rec, nil)
	if err != nil || c.n() != 1 || c.first != 12 || !slices.Equal(c.rec(0), rec) {
		t.Fatalf("parseChunk(v1) = %+v, %v", c, err)
	}
}

func TestChunkParseErrors(t *testing.T) {
	good := encodeChunk(9, mk(time.Unix(0, 0), span(1, 10)...))
	hdrLen := len(good) - func() int { c, _ := parseChunk(9, good, nil); return len(c.body) }()
	flip := func(i int) []byte { b := slices.Clone(good); b[i] ^= 1; return b }
	tests := []struct {
		name string
		last uint64
		v    []byte
	}{
		{"empty", 9, nil},
		{"unknown version", 9, append([]byte{7}, good[1:]...)},
		{"count zero", 9, []byte{chunkVersion, 0, 0, 0, 0, 0}},
		{"count too large", 5000, append([]byte{chunkVersion}, 0x81, 0x10)}, // 2049
		{"starts before position 0", 8, good},
		{"truncated header", 9, good[:hdrLen-2]},
		{"header checksum", 9, flip(2)},
		{"checksum itself", 9, flip(hdrLen - 1)},
		{"body truncated", 9, good[:len(good)-1]},
		{"body too long", 9, append(slices.Clone(good), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseChunk(tt.last, tt.v, nil); !errors.Is(err, errBadChunk) {
				t.Fatalf("parseChunk = %v, want errBadChunk", err)
			}
		})
	}
	// A record damaged inside a good frame is the record's problem.
	v := flip(len(good) - 1)
	c, err := parseChunk(9, v, nil)
	if err != nil {
		t.Fatalf("parseChunk with a bad record = %v", err)
	}
	if checkRecord(c.rec(9)) == nil || checkRecord(c.rec(8)) != nil {
		t.Fatal("the damage is not confined to the last record")
	}
}

func TestClaimedCount(t *testing.T) {
	v := encodeChunk(99, mk(time.Unix(0, 0), span(1, 20)...))
	tests := []struct {
		name  string
		last  uint64
		v     []byte
		after uint64
		want  uint64
	}{
		{"header count", 99, v, 0, 20},
		{"capped by the previous chunk", 99, v, 90, 10},
		{"all before the head", 99, v, 100, 0},
		{"garbage counts one", 99, []byte{0xff, 0xff}, 0, 1},
		{"implausible count", 99, []byte{chunkVersion, 0x81, 0x10}, 0, 1},
	}
	for _, tt := range tests {
		if got := claimedCount(tt.last, tt.v, tt.after); got != tt.want {
			t.Errorf("%s: claimedCount = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// damageRecord flips the last byte of the record at pos inside its chunk,
// leaving the chunk's framing intact.
func damageRecord(t *testing.T, db *pebble.DB, pos uint64) {
	t.Helper()
	last, v := chunkAt(t, db, pos)
	c, err := parseChunk(last, v, nil)
	if err != nil || pos < c.first {
		t.Fatalf("no chunk holds position %d (%v)", pos, err)
	}
	rec := c.rec(c.index(pos)) // part of v
	rec[len(rec)-1] ^= 0xff
	if err := db.Set(recKey(nil, last), v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// chunkAt returns the key position and a copy of the chunk holding pos.
func chunkAt(t *testing.T, db *pebble.DB, pos uint64) (uint64, []byte) {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: recKey(nil, pos), UpperBound: []byte{recPrefix + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if !it.First() {
		t.Fatalf("no chunk at or after position %d", pos)
	}
	last, _ := keyPos(it.Key())
	return last, slices.Clone(it.Value())
}

// chunkKeys lists the chunk keys (last positions) in the store.
func chunkKeys(t testing.TB, db *pebble.DB) []uint64 {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{recPrefix}, UpperBound: []byte{recPrefix + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []uint64
	for ok := it.First(); ok; ok = it.Next() {
		p, _ := keyPos(it.Key())
		out = append(out, p)
	}
	return out
}

// One key per chunk: a Push of n samples writes ceil(n/1024) keys.
func TestKeysPerPush(t *testing.T) {
	b := openT(t, Config{Fsync: FsyncOS}, options{})
	base := time.Unix(1_700_000_000, 0)
	push(t, b, mk(base, span(1, 10_000)...))
	push(t, b, mk(base, span(10_001, 10_200)...))
	want := []uint64{1023, 2047, 3071, 4095, 5119, 6143, 7167, 8191, 9215, 9999, 10_199}
	if got := chunkKeys(t, b.db); !slices.Equal(got, want) {
		t.Fatalf("chunk keys %v, want %v", got, want)
	}
	if got := seqs(drainAll(t, b)); !slices.Equal(got, span(1, 10_200)) {
		t.Fatalf("delivered %d samples, want 1..10200", len(got))
	}
	if got := chunkKeys(t, b.db); len(got) != 0 {
		t.Fatalf("after acking everything, keys %v left", got)
	}
}

// A chunk is cut at maxChunkBytes, keeping at least one record.
func TestChunkByteBound(t *testing.T) {
	b := openT(t, Config{Fsync: FsyncOS}, options{})
	s := mk(time.Unix(1, 0), span(1, 6)...)
	for i := range s {
		s[i].Value = model.String(string(make([]byte, maxChunkBytes/2)))
	}
	push(t, b, s)
	if got := chunkKeys(t, b.db); !slices.Equal(got, []uint64{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("chunk keys %v, want a chunk per oversized record", got)
	}
	s = mk(time.Unix(1, 0), span(7, 106)...) // 100 small ones
	for i := range s {
		s[i].Value = model.String(string(make([]byte, 10_000)))
	}
	push(t, b, s)
	keys := chunkKeys(t, b.db)
	if len(keys) < 6+4 || len(keys) > 6+5 {
		t.Fatalf("100 records of 10 kB in %d chunks, want 4 or 5 of at most 256 KiB", len(keys)-6)
	}
	if got := seqs(drainAll(t, b)); !slices.Equal(got, span(1, 106)) {
		t.Fatalf("delivered %v", got)
	}
}
