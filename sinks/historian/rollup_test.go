package historian

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// rollupSeries makes one tag's samples from start: steps of 1–40 s with
// now and then a silence of minutes to hours (a value held across many
// empty blocks), times often on or just beside a block edge, values of
// every kind, some of bad or uncertain quality (with and without a
// number) and NaN. walk makes it a random walk of floats (compression).
func rollupSeries(rng *rand.Rand, path string, start int64, n int, walk bool) []model.Sample {
	sec := int64(time.Second)
	out := make([]model.Sample, 0, n)
	t, v := start, 0.0
	for len(out) < n {
		switch r := rng.IntN(40); {
		case r == 0:
			t += (5 + rng.Int64N(180)) * int64(time.Minute) // held across many empty blocks
		case r < 6:
			t = blockOf(t) + rollupBlock + []int64{0, -1, 1, -sec}[rng.IntN(4)] // on or beside a block edge
		default:
			t += sec + rng.Int64N(40*sec)
		}
		if len(out) > 0 && t <= out[len(out)-1].SourceTime {
			t = out[len(out)-1].SourceTime + 1
		}
		v += rng.NormFloat64() * 3
		var val model.Value = model.Float(v)
		if !walk {
			switch r := rng.IntN(20); {
			case r < 2:
				val = model.Int(rng.Int64N(1000) - 500)
			case r < 3:
				val = model.Bool(rng.IntN(2) == 0)
			case r < 4:
				val = model.String("state")
			case r < 5:
				val = model.Float(math.NaN())
			}
		}
		q := model.Quality{}
		switch rng.IntN(25) {
		case 0, 1:
			q = model.Quality{Code: model.Uncertain, Reason: "drift"}
		case 2:
			q = model.Quality{Code: model.Bad, Reason: "last known value"}
		case 3:
			q, val = model.Quality{Code: model.Bad, Reason: "comm failure"}, model.Value{}
		}
		out = append(out, model.Sample{Path: path, Value: val, Quality: q, SourceTime: t, EdgeTime: t, Seq: uint64(len(out) + 1)})
	}
	return out
}

// batches cuts samples into batches of 1–maxN.
func batches(rng *rand.Rand, s []model.Sample, maxN int) [][]model.Sample {
	var out [][]model.Sample
	for len(s) > 0 {
		n := min(1+rng.IntN(maxN), len(s))
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// rollupQueries are ranges and intervals over [lo, hi): whole, from and
// to off the block edges, short ones inside one block, across midnight;
// intervals that are multiples of the block (rollups) and others.
func rollupQueries(rng *rand.Rand, lo, hi int64) [][3]int64 {
	ivs := []int64{30, 60, 90, 300, 1020, 3600, 7 * 3600, 86400}
	var out [][3]int64
	for _, iv := range ivs {
		out = append(out, [3]int64{lo - dayNs, hi + dayNs, iv * int64(time.Second)})
	}
	for range 24 {
		a := lo + rng.Int64N(hi-lo)
		b := a + rng.Int64N(min(hi-a, []int64{int64(time.Minute), int64(time.Hour), dayNs, 3 * dayNs}[rng.IntN(4)])) + 1
		if rng.IntN(3) == 0 {
			a = blockOf(a)
		}
		iv := ivs[rng.IntN(len(ivs))] * int64(time.Second)
		if rng.IntN(5) == 0 {
			iv += 1 // not a multiple of the block: the raw path
		}
		out = append(out, [3]int64{a, b, iv})
	}
	// Across midnight, with from and to off the block edges.
	m := dayOf(lo)*dayNs + dayNs
	out = append(out, [3]int64{m - 12345678901, m + 9876543210, 90 * int64(time.Second)})
	return out
}

// sameBucket says whether two buckets agree: exactly for the start, the
// count, min, max, first and last; within 1e-9 relative for the means.
func sameBucket(g, w Bucket) bool {
	return g.Start == w.Start && g.Count == w.Count && g.Min == w.Min && g.Max == w.Max && g.First == w.First && g.Last == w.Last &&
		near(g.Mean, w.Mean) && near(g.TWMean, w.TWMean)
}

// checkAgainstModel compares every query, for every tag, through the
// rollups with the brute-force model of the rows on disk and with the
// raw path.
func checkAgainstModel(t *testing.T, st *Store, tags []string, qs [][3]int64, useModel bool) {
	t.Helper()
	ctx := context.Background()
	for _, tag := range tags {
		rows, err := st.Raw(ctx, tag, math.MinInt64/2, math.MaxInt64/2, MaxRawLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			got, err := st.Aggregate(ctx, tag, q[0], q[1], q[2])
			if err != nil {
				t.Fatal(err)
			}
			raw, err := st.AggregateWith(ctx, tag, q[0], q[1], q[2], AggregateOptions{raw: true})
			if err != nil {
				t.Fatal(err)
			}
			wants := map[string][]Bucket{"raw path": raw}
			if useModel {
				wants["model"] = modelBuckets(rows, q[0], q[1], q[2], false)
			}
			for name, want := range wants {
				if len(got) != len(want) {
					t.Fatalf("%s [%d, %d) / %v: %d buckets, %s has %d", tag, q[0], q[1], time.Duration(q[2]), len(got), name, len(want))
				}
				for i := range want {
					if !sameBucket(got[i], want[i]) {
						t.Fatalf("%s [%d, %d) / %v: bucket %d = %+v, %s %+v", tag, q[0], q[1], time.Duration(q[2]), i, got[i], name, want[i])
					}
				}
			}
		}
	}
}

// TestRollupsAgainstModel: aggregates through the rollups equal the
// brute-force model of the stored rows bucket by bucket, however the rows
// arrived.
func TestRollupsAgainstModel(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(0, day0+4*dayNs)
	for _, tc := range []struct {
		name     string
		comp     Compression
		walk     bool
		write    func(t *testing.T, rng *rand.Rand, s *Sink, data []model.Sample) *Sink
		reopened bool
	}{
		{name: "in_order", write: inOrder},
		{name: "out_of_order_batches", write: func(t *testing.T, rng *rand.Rand, s *Sink, data []model.Sample) *Sink {
			bs := batches(rng, data, 200)
			rng.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
			for _, b := range bs {
				b = slices.Clone(b)
				if rng.IntN(3) == 0 {
					rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
				}
				mustWrite(t, s, b)
			}
			return s
		}},
		{name: "replays", write: func(t *testing.T, rng *rand.Rand, s *Sink, data []model.Sample) *Sink {
			bs := batches(rng, data, 150)
			for i, b := range bs {
				mustWrite(t, s, b)
				if i > 0 && rng.IntN(3) == 0 {
					old := slices.Clone(bs[rng.IntN(i)])
					if rng.IntN(2) == 0 { // a replay with other values: the last write wins
						for k := range old {
							old[k].Value, old[k].Quality = model.Float(rng.NormFloat64()), model.Quality{}
						}
					}
					mustWrite(t, s, old)
				}
			}
			return s
		}},
		{name: "reopened", reopened: true, write: func(t *testing.T, rng *rand.Rand, s *Sink, data []model.Sample) *Sink {
			for _, b := range batches(rng, data, 300) {
				if rng.IntN(4) == 0 { // restart: the summaries in memory are gone
					dir := s.cfg.Dir
					if err := s.Close(ctx); err != nil {
						t.Fatal(err)
					}
					s = newSink(t, Config{Dir: dir}, now)
				}
				mustWrite(t, s, b)
			}
			return s
		}},
		{name: "swinging_door", walk: true, write: inOrder,
			comp: Compression{CompressionSettings: CompressionSettings{Method: MethodSwingingDoor, Deviation: 4, MaxInterval: "3m"}}},
		{name: "deadband", walk: true, write: inOrder,
			comp: Compression{CompressionSettings: CompressionSettings{Method: MethodDeadband, Deviation: 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(2) {
				rng := rand.New(rand.NewPCG(seed, 13))
				var data []model.Sample
				tags := []string{"r/a", "r/b", "r/c"}
				for i, p := range tags {
					data = append(data, rollupSeries(rng, p, day0+dayNs-int64(i+1)*3*int64(time.Hour), 900, tc.walk)...)
				}
				// Interleave the tags in time, as a gateway sends them.
				slices.SortStableFunc(data, func(a, b model.Sample) int { return cmpInt(a.SourceTime, b.SourceTime) })
				s := newSink(t, Config{Dir: t.TempDir(), Compression: tc.comp}, now)
				s = tc.write(t, rng, s, data)
				lo, hi := data[0].SourceTime, data[len(data)-1].SourceTime+1
				if days, _ := s.Store().Days(); len(days) < 2 {
					t.Fatalf("day files %v, want the data across midnight", days)
				}
				checkAgainstModel(t, s.Store(), tags, rollupQueries(rng, lo, hi), true)
				// And read by another store, as the API or an export would.
				other, err := OpenStore(s.cfg.Dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstModel(t, other, tags[:1], rollupQueries(rng, lo, hi), false)
				other.Close()
			}
		})
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func inOrder(t *testing.T, rng *rand.Rand, s *Sink, data []model.Sample) *Sink {
	for _, b := range batches(rng, data, 250) {
		mustWrite(t, s, b)
	}
	return s
}

func mustWrite(t *testing.T, s *Sink, b []model.Sample) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// TestRollupPathEqualsRaw: on random data written in random ways, the
// rollup path gives the raw path's buckets, many seeds.
func TestRollupPathEqualsRaw(t *testing.T) {
	now := time.Unix(0, day0+4*dayNs)
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			data := rollupSeries(rng, "x", day0+dayNs-int64(rng.IntN(20))*int64(time.Hour), 1000, false)
			bs := batches(rng, data, 400)
			if seed%2 == 1 { // some batches late
				for i := range bs {
					if j := rng.IntN(len(bs)); rng.IntN(4) == 0 {
						bs[i], bs[j] = bs[j], bs[i]
					}
				}
			}
			s := newSink(t, Config{Dir: t.TempDir()}, now)
			for _, b := range bs {
				mustWrite(t, s, b)
			}
			checkAgainstModel(t, s.Store(), []string{"x"}, rollupQueries(rng, data[0].SourceTime, data[len(data)-1].SourceTime+1), false)
		})
	}
}

// TestRollupRows: the rollup rows on disk are those of the rows: written
// in order they come from the summaries in memory, and must equal what
// the same rows give read back (readRollups), block by block; the mark is
// at most rollupFlush blocks behind the newest row's block.
func TestRollupRows(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	data := rollupSeries(rng, "x", day0+int64(time.Hour), 2000, false)
	s := newSink(t, Config{Dir: t.TempDir()}, time.Unix(0, day0+4*dayNs))
	for _, b := range batches(rng, data, 100) {
		mustWrite(t, s, b)
	}
	st := s.Store()
	for _, d := range []int64{dayOf(data[0].SourceTime), dayOf(data[len(data)-1].SourceTime)} {
		h, err := st.open(ctx, d, false)
		if err != nil || h == nil {
			t.Fatal(h, err)
		}
		var id, upto, newest int64
		if err := h.db.QueryRowContext(ctx, `SELECT g.id, m.upto, (SELECT max(t) FROM samples WHERE tag = g.id) FROM tags g JOIN rollup_mark m ON m.tag = g.id WHERE g.path = 'x'`).Scan(&id, &upto, &newest); err != nil {
			t.Fatal(err)
		}
		// The closed blocks wait in memory until rollupFlush of them.
		if lag := blockOf(newest) - upto; lag < 0 || lag > rollupFlush*rollupBlock {
			t.Fatalf("day %d: mark %d, %v behind the newest row's block %d", d, upto, time.Duration(lag), blockOf(newest))
		}
		var want []rollupRow
		if err := h.readRollups(ctx, h.db, id, d*dayNs, upto, func(r rollupRow) { want = append(want, r) }); err != nil {
			t.Fatal(err)
		}
		rows, err := h.db.QueryContext(ctx, `SELECT b, n, mn, mx, sum, first, last, t0, tl, held, tw, span FROM rollups WHERE tag = ? ORDER BY b`, id)
		if err != nil {
			t.Fatal(err)
		}
		var got []rollupRow
		for rows.Next() {
			var r rollupRow
			var f [6]any
			if err := rows.Scan(&r.b, &r.n, &f[0], &f[1], &f[2], &f[3], &f[4], &r.t0, &r.tl, &r.held, &f[5], &r.span); err != nil {
				t.Fatal(err)
			}
			fs := []*float64{&r.min, &r.max, &r.sum, &r.first, &r.last, &r.tw}
			for i, p := range fs {
				switch x := f[i].(type) {
				case float64:
					*p = x
				case int64:
					*p = float64(x)
				}
			}
			r.any = true
			got = append(got, r)
		}
		rows.Close()
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("day %d: %d rollup rows, want %d", d, len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.n == 0 { // min … last mean nothing without a counted value
				g.min, g.max, g.sum, g.first, g.last = w.min, w.max, w.sum, w.first, w.last
			}
			if g.b != w.b || g.n != w.n || g.min != w.min || g.max != w.max || g.first != w.first || g.last != w.last || g.t0 != w.t0 ||
				g.tl != w.tl || g.held != w.held || g.span != w.span || !near(g.sum, w.sum) || !near(g.tw, w.tw) {
				t.Fatalf("day %d block %d: %+v, want %+v", d, i, g, w)
			}
		}
	}
}

// TestRollupCases: the changes the random tests reach rarely, each
// checked against the model of the rows on disk and the raw path.
func TestRollupCases(t *testing.T) {
	ctx := context.Background()
	sec := int64(time.Second)
	at := func(s int64) int64 { return day0 + dayNs/2 + s*sec }
	f := func(s int64, v float64) model.Sample {
		return model.Sample{Path: "x", Value: model.Float(v), SourceTime: at(s)}
	}
	bad := func(s int64) model.Sample {
		return model.Sample{Path: "x", Quality: model.Quality{Code: model.Bad, Reason: "comm failure"}, SourceTime: at(s)}
	}
	qs := [][3]int64{{at(-60), at(1000), 30 * sec}, {at(-60), at(1000), 60 * sec}, {at(1), at(599), 90 * sec}, {day0, day0 + 2*dayNs, 3600 * sec}}
	for _, tc := range []struct {
		name  string
		steps func(t *testing.T, s *Sink) *Sink
	}{
		{"late_sample_in_open_block", func(t *testing.T, s *Sink) *Sink {
			mustWrite(t, s, []model.Sample{f(-300, 0)}) // the tag's first block: its summary starts with the next
			mustWrite(t, s, []model.Sample{f(0, 1), f(5, 2), f(10, 3)})
			mustWrite(t, s, []model.Sample{bad(3)})
			mustWrite(t, s, []model.Sample{f(3, 100)})          // before the newest, same block
			mustWrite(t, s, []model.Sample{f(40, 4), f(95, 5)}) // closes it
			mustWrite(t, s, []model.Sample{f(900, 6)})          // and the summaries are written
			return s
		}},
		{"replay_in_open_block", func(t *testing.T, s *Sink) *Sink {
			mustWrite(t, s, []model.Sample{f(-300, 0)})
			mustWrite(t, s, []model.Sample{f(0, 1), f(5, 2), f(10, 3)})
			mustWrite(t, s, []model.Sample{f(10, 30)}) // the same time, another value
			mustWrite(t, s, []model.Sample{f(12, 5)})
			mustWrite(t, s, []model.Sample{f(61, 4)})
			mustWrite(t, s, []model.Sample{f(900, 6)})
			return s
		}},
		{"gaps_across_edges", func(t *testing.T, s *Sink) *Sink {
			mustWrite(t, s, []model.Sample{f(29, 1), bad(30), f(59, 2), bad(89), bad(90), f(400, 3)})
			mustWrite(t, s, []model.Sample{bad(401), f(500, 7)})
			return s
		}},
		{"removal_empties_a_closed_block", func(t *testing.T, s *Sink) *Sink {
			mustWrite(t, s, []model.Sample{f(0, 1), f(40, 2), f(100, 3)})
			// A deletion in a closed block that leaves it without rows.
			if err := s.Store().write(ctx, dayOf(at(0)), nil, []model.Sample{f(40, 2)}); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, s, []model.Sample{f(130, 4)})
			return s
		}},
		{"file_from_before_rollups", func(t *testing.T, s *Sink) *Sink {
			var day []model.Sample
			for i := int64(-50); i < 300; i += 7 {
				day = append(day, f(i, float64(i)))
			}
			mustWrite(t, s, day)
			// As a file written before rollups existed: no rollups, no mark.
			h, err := s.Store().open(ctx, dayOf(at(0)), false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.db.ExecContext(ctx, `DELETE FROM rollups; DELETE FROM rollup_mark`); err != nil {
				t.Fatal(err)
			}
			dir := s.cfg.Dir
			s.Close(ctx)
			s2 := newSink(t, Config{Dir: dir}, time.Unix(0, day0+4*dayNs))
			mustWrite(t, s2, []model.Sample{f(100, 1000)}) // among the old rows
			mustWrite(t, s2, []model.Sample{f(131, 2000)}) // the next block, old rows in it
			mustWrite(t, s2, []model.Sample{f(200, 3000), f(260, 1)})
			mustWrite(t, s2, []model.Sample{f(500, 2)}) // far enough for the closed blocks to be written
			mustWrite(t, s2, []model.Sample{f(900, 3)})
			return s2
		}},
		{"old_file_read_only", func(t *testing.T, s *Sink) *Sink {
			var day []model.Sample
			for i := int64(-50); i < 300; i += 7 {
				day = append(day, f(i, float64(i)))
			}
			mustWrite(t, s, day)
			// As a file written before rollups that this process cannot
			// change: the rollup tables cannot be made (here an index is
			// in the way of the name, which fails CREATE TABLE as a
			// read-only file would), so aggregates read the samples.
			h, err := s.Store().open(ctx, dayOf(at(0)), false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.db.ExecContext(ctx, `DROP TABLE rollups; CREATE INDEX rollups ON samples (q)`); err != nil {
				t.Fatal(err)
			}
			dir := s.cfg.Dir
			s.Close(ctx)
			s2 := newSink(t, Config{Dir: dir}, time.Unix(0, day0+4*dayNs))
			if h, err := s2.Store().open(ctx, dayOf(at(0)), false); err != nil || !h.noRollups {
				t.Fatalf("open for reading: %v, noRollups %v; want the samples-only fallback", err, h != nil && h.noRollups)
			}
			return s2
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, Config{Dir: t.TempDir()}, time.Unix(0, day0+4*dayNs))
			s = tc.steps(t, s)
			checkAgainstModel(t, s.Store(), []string{"x"}, qs, true)
		})
	}
}

// BenchmarkIngestRollups writes as TestMeasureIngest's source does: 1,000
// tags one sample a second each, batches of 10,000 (a block closes for a
// third of the tags per batch); it reports samples/s of the sink alone.
func BenchmarkIngestRollups(b *testing.B) {
	ctx := context.Background()
	s, err := New(Config{Dir: b.TempDir(), MaxBytes: 8 << 30}, nil)
	if err != nil {
		b.Fatal(err)
	}
	s.now = func() time.Time { return time.Unix(0, day0+dayNs/2) }
	if err := s.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	paths := make([]string, 1000)
	for i := range paths {
		paths[i] = fmt.Sprintf("plant/area%d/tag%d", i%10, i)
	}
	batch := make([]model.Sample, 10_000)
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range batch {
			ts := day0 + int64(n/len(paths))*int64(time.Second)
			batch[j] = model.Sample{Path: paths[n%len(paths)], Value: model.Float(float64(n%977) / 7), SourceTime: ts, Seq: uint64(n)}
			n++
		}
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

// TestAggOf: the writer's view of a sample is what the query reads back
// from its stored column.
func TestAggOf(t *testing.T) {
	for _, v := range []model.Value{model.Bool(true), model.Bool(false), model.Int(-7), model.Int(math.MaxInt64), model.Uint(math.MaxUint64),
		model.Uint(1 << 62), model.Float(2.5), model.Float(math.NaN()), model.Float(math.Inf(-1)), model.String("x"), {}} {
		for _, q := range []model.Quality{{}, {Code: model.Bad}, {Code: model.Uncertain}} {
			sm := model.Sample{Value: v, Quality: q}
			sel, cnt, f := aggOf(&sm)
			var want float64
			hasNum := false
			if v.Kind() == model.KindBool || v.Kind() == model.KindInt || v.Kind() == model.KindUint || v.Kind() == model.KindFloat {
				switch x := encodeValue(v).(type) {
				case int64:
					want, hasNum = float64(x), true
				case float64:
					want, hasNum = x, true
				}
			}
			if sel != (hasNum || q.Code != model.Good) || cnt != (hasNum && q.Code == model.Good) || (hasNum && f != want) {
				t.Errorf("aggOf(%v, %v) = %v %v %v, want number %v %v", v, q, sel, cnt, f, hasNum, want)
			}
		}
	}
}
