package historian

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// day0 is midnight UTC of the first day of the random data.
var day0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// randomData makes samples for tags over three days from day0, unique
// times per tag, of every kind, some of bad or uncertain quality (with a
// number, or bad without a value).
func randomData(rng *rand.Rand, tags, n int) []model.Sample {
	used := map[string]map[int64]bool{}
	out := make([]model.Sample, 0, n)
	for len(out) < n {
		p := fmt.Sprintf("plant/line%d/temp", rng.IntN(tags))
		ts := day0 + rng.Int64N(3*dayNs)
		if used[p] == nil {
			used[p] = map[int64]bool{}
		}
		if used[p][ts] {
			continue
		}
		used[p][ts] = true
		var v model.Value
		switch r := rng.IntN(10); {
		case r < 6:
			v = model.Float(rng.NormFloat64() * 100)
		case r < 7:
			v = model.Int(rng.Int64N(1000) - 500)
		case r < 8:
			v = model.Bool(rng.IntN(2) == 0)
		default:
			v = model.String(fmt.Sprintf("state-%d ünï", rng.IntN(5)))
		}
		q := model.Quality{}
		switch rng.IntN(20) {
		case 0, 1:
			q = model.Quality{Code: model.Uncertain, Reason: "drift"}
		case 2:
			q = model.Quality{Code: model.Bad, Reason: "last known value"}
		case 3: // a device outage: no value
			q, v = model.Quality{Code: model.Bad, Reason: "comm failure"}, model.Value{}
		}
		out = append(out, model.Sample{Path: p, Value: v, Quality: q, SourceTime: ts, EdgeTime: ts, Seq: uint64(len(out) + 1)})
	}
	return out
}

// modelOf is the brute-force model: the samples of one tag, time-ordered.
func modelOf(all []model.Sample, path string) []model.Sample {
	var out []model.Sample
	for _, s := range all {
		if s.Path == path {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b model.Sample) int { return int(a.SourceTime - b.SourceTime) })
	return out
}

func numOf(s model.Sample) (float64, bool) {
	f, ok := s.Value.Float64()
	return f, ok && !math.IsNaN(f)
}

// modelBuckets computes Aggregate by definition, segment by segment: the
// samples that count are the good numeric ones (every numeric one with
// anyQuality); a sample of bad or uncertain quality that does not count
// ends the previous value.
func modelBuckets(tag []model.Sample, from, to, iv int64, anyQuality bool) []Bucket {
	countsM := func(s model.Sample) bool {
		_, ok := numOf(s)
		return ok && (anyQuality || s.Quality.IsGood())
	}
	var nums []model.Sample
	for _, s := range tag {
		if countsM(s) {
			nums = append(nums, s)
		}
	}
	// hold[i] is the value holding after tag[i] (by the definition: the
	// last sample that counts, unless a bad or uncertain one came after).
	type held struct {
		f  float64
		ok bool
	}
	hold := make([]held, len(tag))
	var cur held
	for i, s := range tag {
		switch {
		case countsM(s):
			cur.f, cur.ok = numOf(s)
		case !s.Quality.IsGood():
			cur.ok = false
		}
		hold[i] = cur
	}
	valueAt := func(t int64) (float64, bool) { // the value holding at t
		i := sort.Search(len(tag), func(i int) bool { return tag[i].SourceTime > t }) - 1
		if i < 0 {
			return 0, false
		}
		return hold[i].f, hold[i].ok
	}
	since := func(list []model.Sample, t int64) int { // first index at or after t
		return sort.Search(len(list), func(i int) bool { return list[i].SourceTime >= t })
	}
	var out []Bucket
	for b0 := from / iv * iv; b0 < to; b0 += iv { // edges at multiples of iv (from > 0 here)
		b1 := min(b0+iv, to)
		in := nums[since(nums, max(b0, from)):since(nums, b1)]
		if len(in) == 0 {
			continue
		}
		b := Bucket{Start: b0, Count: len(in), Min: math.Inf(1), Max: math.Inf(-1)}
		sum := 0.0
		for _, s := range in {
			f, _ := numOf(s)
			sum += f
			b.Min, b.Max = min(b.Min, f), max(b.Max, f)
		}
		b.First, _ = numOf(in[0])
		b.Last, _ = numOf(in[len(in)-1])
		b.Mean = sum / float64(len(in))
		pts := []int64{max(b0, from)}
		for _, s := range tag[since(tag, max(b0, from)):since(tag, b1)] { // every sample that sets or ends a value
			if countsM(s) || !s.Quality.IsGood() {
				pts = append(pts, s.SourceTime)
			}
		}
		pts = append(pts, b1)
		var area float64
		var span int64
		for i := 0; i+1 < len(pts); i++ {
			if f, ok := valueAt(pts[i]); ok && pts[i+1] > pts[i] {
				area += f * float64(pts[i+1]-pts[i])
				span += pts[i+1] - pts[i]
			}
		}
		b.TWMean = b.Last
		if span > 0 {
			b.TWMean = area / float64(span)
		}
		out = append(out, b)
	}
	return out
}

func near(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b))
}

func TestQueriesAgainstModel(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 2))
	data := randomData(rng, 3, 3000)
	s, err := New(Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for i := 0; i < len(data); { // batches of random size, spanning midnights
		n := min(1+rng.IntN(400), len(data)-i)
		if err := s.Write(ctx, data[i:i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	st := s.Store()
	if days, _ := st.Days(); len(days) != 3 {
		t.Fatalf("day files %v, want 3", days)
	}
	h := int64(time.Hour)
	ranges := []struct {
		name         string
		from, to, iv int64
		limit        int
	}{
		{"all", day0 - h, day0 + 4*dayNs, 7 * h, 1_000_000},
		{"across_midnight", day0 + dayNs - 5*h, day0 + dayNs + 3*h, 17 * time.Minute.Nanoseconds(), 1_000_000},
		{"two_midnights", day0 + 20*h, day0 + 50*h, h, 100},
		{"one_day_limited", day0 + dayNs, day0 + 2*dayNs, dayNs / 1000, 7},
		{"odd_interval", day0 + 123456789, day0 + 3*dayNs - 987654321, 3*h + 1, 1_000_000},
		{"empty", day0 + 5*dayNs, day0 + 6*dayNs, h, 10},
	}
	for _, tag := range []string{"plant/line0/temp", "plant/line1/temp", "plant/line2/temp", "plant/none"} {
		m := modelOf(data, tag)
		for _, r := range ranges {
			t.Run(tag+"/"+r.name, func(t *testing.T) {
				var want []model.Sample
				for _, x := range m {
					if x.SourceTime >= r.from && x.SourceTime < r.to && len(want) < r.limit {
						want = append(want, x)
					}
				}
				got, err := st.Raw(ctx, tag, r.from, r.to, r.limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("raw: %d samples, want %d", len(got), len(want))
				}
				for i := range want {
					g, w := got[i], want[i]
					if g.SourceTime != w.SourceTime || !g.Value.Equal(w.Value) || g.Quality != w.Quality || g.Seq != w.Seq {
						t.Fatalf("raw[%d] = %+v, want %+v", i, g, w)
					}
				}
				for _, anyQ := range []bool{false, true} {
					gb, err := st.AggregateWith(ctx, tag, r.from, r.to, r.iv, AggregateOptions{AnyQuality: anyQ})
					if err != nil {
						t.Fatal(err)
					}
					wb := modelBuckets(m, r.from, r.to, r.iv, anyQ)
					if len(gb) != len(wb) {
						t.Fatalf("aggregate (any quality %v): %d buckets, want %d", anyQ, len(gb), len(wb))
					}
					for i := range wb {
						g, w := gb[i], wb[i]
						if g.Start != w.Start || g.Count != w.Count || !near(g.Min, w.Min) || !near(g.Max, w.Max) || !near(g.Mean, w.Mean) ||
							!near(g.First, w.First) || !near(g.Last, w.Last) || !near(g.TWMean, w.TWMean) {
							t.Fatalf("bucket %d (any quality %v) = %+v, want %+v", i, anyQ, g, w)
						}
					}
				}
			})
		}
	}
	t.Run("latest", func(t *testing.T) {
		got, err := st.Latest(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("latest of %d tags, want 3", len(got))
		}
		for p, g := range got {
			m := modelOf(data, p)
			w := m[len(m)-1]
			if g.SourceTime != w.SourceTime || !g.Value.Equal(w.Value) || g.Quality != w.Quality {
				t.Errorf("latest %s = %+v, want %+v", p, g, w)
			}
		}
		one, err := st.Latest(ctx, []string{"plant/line1/temp", "plant/none"})
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != 1 || one["plant/line1/temp"].Seq != got["plant/line1/temp"].Seq {
			t.Errorf("latest of one tag = %+v", one)
		}
	})
	t.Run("bad_arguments", func(t *testing.T) {
		if _, err := st.Raw(ctx, "plant/line0/temp", 0, 1, 0); err == nil {
			t.Error("limit 0 accepted")
		}
		if _, err := st.Aggregate(ctx, "plant/line0/temp", 0, dayNs, 1); err == nil {
			t.Error("too many buckets accepted")
		}
	})
}

// TestAggregateQuality: the reviewer's cases. A device outage (a bad
// sample with no value) is a gap, not the last good value held through
// it; an uncertain number is not averaged like a good one unless asked.
func TestAggregateQuality(t *testing.T) {
	ctx := context.Background()
	s := newSink(t, Config{Dir: t.TempDir()}, time.Unix(0, day0+dayNs/2))
	sec := int64(time.Second)
	bad := model.Quality{Code: model.Bad, Reason: "comm failure"}
	unc := model.Quality{Code: model.Uncertain, Reason: "drift"}
	batch := []model.Sample{
		{Path: "a/x", Value: model.Float(10), SourceTime: day0},
		{Path: "a/x", Quality: bad, SourceTime: day0 + 10*sec},           // outage
		{Path: "a/x", Value: model.Float(20), SourceTime: day0 + 50*sec}, // back
		{Path: "a/x", Value: model.Float(1000), Quality: unc, SourceTime: day0 + 55*sec},
		{Path: "a/x", Value: model.Float(30), SourceTime: day0 + 70*sec}, // next bucket
	}
	if err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		any        bool
		want0      Bucket
		wantTW1    float64
		wantCount1 int
	}{
		// [0,10) 10, [10,50) gap, [50,55) 20, [55,60) gap (uncertain ends 20).
		{"good only", false, Bucket{Start: day0, Count: 2, Min: 10, Max: 20, Mean: 15, First: 10, Last: 20, TWMean: (10*10 + 20*5) / 15.0}, 30, 1},
		// [0,10) 10, gap, [50,55) 20, [55,60) 1000.
		{"any quality", true, Bucket{Start: day0, Count: 3, Min: 10, Max: 1000, Mean: 1030 / 3.0, First: 10, Last: 1000, TWMean: (10*10 + 20*5 + 1000*5) / 20.0}, (1000*10 + 30*50) / 60.0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Store().AggregateWith(ctx, "a/x", day0, day0+120*sec, 60*sec, AggregateOptions{AnyQuality: tc.any})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("buckets %+v, want 2", got)
			}
			g, w := got[0], tc.want0
			if g.Start != w.Start || g.Count != w.Count || !near(g.Min, w.Min) || !near(g.Max, w.Max) || !near(g.Mean, w.Mean) ||
				!near(g.First, w.First) || !near(g.Last, w.Last) || !near(g.TWMean, w.TWMean) {
				t.Fatalf("bucket 0 = %+v, want %+v", g, w)
			}
			if !near(got[1].TWMean, tc.wantTW1) || got[1].Count != tc.wantCount1 {
				t.Fatalf("bucket 1 = %+v, want tw_mean %v count %d", got[1], tc.wantTW1, tc.wantCount1)
			}
		})
	}
}
