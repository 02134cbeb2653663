package durable

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// offsets gives records of sizes 10, 11, 12, … for n samples.
func offsets(n int) []int {
	offs := []int{0}
	for i := range n {
		offs = append(offs, offs[i]+10+i)
	}
	return offs
}

func cached(c *tailCache, from uint64, n int) (vals []int64, sizes []int32) {
	out, sz := c.get(from, n, nil, nil)
	for _, s := range out {
		vals = append(vals, int64(s.Seq))
	}
	return vals, sz
}

func TestTailCache(t *testing.T) {
	base := time.Unix(0, 0)
	type add struct {
		pos uint64
		ids []int
	}
	for _, tc := range []struct {
		name   string
		max    int
		adds   []add
		forget uint64
		from   uint64
		n      int
		want   []int64
	}{
		{name: "contiguous", max: 8, adds: []add{{10, span(1, 3)}, {13, span(4, 5)}}, from: 10, n: 10, want: []int64{1, 2, 3, 4, 5}},
		{name: "from the middle, capped by n", max: 8, adds: []add{{10, span(1, 5)}}, from: 12, n: 2, want: []int64{3, 4}},
		{name: "gap starts afresh", max: 8, adds: []add{{10, span(1, 3)}, {20, span(4, 5)}}, from: 10, n: 10, want: nil},
		{name: "after a gap, the new run", max: 8, adds: []add{{10, span(1, 3)}, {20, span(4, 5)}}, from: 20, n: 10, want: []int64{4, 5}},
		{name: "full: oldest forgotten", max: 4, adds: []add{{0, span(1, 3)}, {3, span(4, 6)}}, from: 0, n: 10, want: nil},
		{name: "full: newest kept", max: 4, adds: []add{{0, span(1, 3)}, {3, span(4, 6)}}, from: 2, n: 10, want: []int64{3, 4, 5, 6}},
		{name: "one add larger than the cache", max: 4, adds: []add{{0, span(1, 10)}}, from: 6, n: 10, want: []int64{7, 8, 9, 10}},
		{name: "forgotten positions are gone", max: 8, adds: []add{{0, span(1, 6)}}, forget: 4, from: 3, n: 10, want: nil},
		{name: "forget keeps the rest", max: 8, adds: []add{{0, span(1, 6)}}, forget: 4, from: 4, n: 10, want: []int64{5, 6}},
		{name: "forget past the end", max: 8, adds: []add{{0, span(1, 2)}, {2, span(3, 4)}}, forget: 99, from: 2, n: 10, want: nil},
		{name: "wraps around the ring", max: 4, adds: []add{{0, span(1, 3)}, {3, span(4, 5)}, {5, span(6, 7)}}, forget: 5, from: 5, n: 10, want: []int64{6, 7}},
		{name: "off", max: 0, adds: []add{{0, span(1, 2)}}, from: 0, n: 10, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &tailCache{max: tc.max}
			for _, a := range tc.adds {
				c.add(a.pos, mk(base, a.ids...), offsets(len(a.ids)))
			}
			c.forget(tc.forget)
			got, sizes := cached(c, tc.from, tc.n)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("get(%d, %d) = %v, want %v", tc.from, tc.n, got, tc.want)
			}
			if len(sizes) != len(got) {
				t.Fatalf("%d sizes for %d samples", len(sizes), len(got))
			}
			if len(c.samples) > tc.max {
				t.Fatalf("ring of %d, bound %d", len(c.samples), tc.max)
			}
		})
	}
}

// Sizes travel with their samples through growth and wrap-around: they
// are what Ack subtracts from the byte count.
func TestTailCacheSizes(t *testing.T) {
	c := &tailCache{max: 1 << 12}
	pos := uint64(0)
	for range 40 {
		ids := span(1, 100)
		c.add(pos, mk(time.Unix(0, 0), ids...), offsets(len(ids)))
		pos += uint64(len(ids))
		c.forget(pos - 50)
	}
	_, sizes := cached(c, pos-50, 50)
	for i, s := range sizes {
		if want := int32(10 + 50 + i); s != want {
			t.Fatalf("size %d = %d, want %d", i, s, want)
		}
	}
	if len(c.samples) > 1024 { // the smallest ring it allocates
		t.Fatalf("ring grew to %d for 4000 samples of which at most 150 were ever unacked", len(c.samples))
	}
}

// The byte count stays exact whether batches come from the cache or the
// store: after everything is acked it is back to zero.
func TestBytesBackToZeroThroughCacheAndStore(t *testing.T) {
	b := openT(t, Config{Fsync: FsyncOS}, options{cacheSamples: 5})
	base := time.Unix(1, 0)
	push(t, b, mk(base, span(1, 12)...))
	push(t, b, mk(base, span(13, 14)...))
	var got []model.Sample
	for len(got) < 14 {
		batch := next(t, b, 4)
		got = append(got, batch.Samples...)
		if err := b.Ack(batch); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(seqs(got), span(1, 14)) {
		t.Fatalf("got %v", seqs(got))
	}
	if st := b.Stats(); st.Bytes != 0 || st.Depth != 0 {
		t.Fatalf("after acking everything: %d bytes, depth %d", st.Bytes, st.Depth)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := b.Next(ctx, 1); err == nil {
		t.Fatal("Next handed out more")
	}
}
