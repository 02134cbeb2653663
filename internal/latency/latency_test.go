package latency

import (
	"math"
	"testing"
	"time"
)

func TestBucketsAreMonotonicAndTight(t *testing.T) {
	prev := -1
	for _, ns := range []int64{0, 1, 15, 16, 17, 31, 32, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 123456789, 1 << 39, 1<<40 - 1} {
		b := bucketOf(ns)
		if b < prev {
			t.Fatalf("bucket of %d is %d, below previous %d", ns, b, prev)
		}
		prev = b
		if ub := upperBound(b); ub < ns || float64(ub-ns) > float64(ns)/64+1 {
			t.Fatalf("value %d: bucket %d upper bound %d is not within 1/64", ns, b, ub)
		}
	}
}

// Every bucket's upper bound falls in it and the next value in the next
// one; values beyond the range land in the last bucket.
func TestBucketBounds(t *testing.T) {
	for i := range numBuckets - 1 {
		ub := upperBound(i)
		if bucketOf(ub) != i || bucketOf(ub+1) != i+1 {
			t.Fatalf("bucket %d: upper bound %d maps to %d, %d+1 to %d", i, ub, bucketOf(ub), ub, bucketOf(ub+1))
		}
	}
	for _, ns := range []int64{-5, 0} {
		if b := bucketOf(ns); b != 0 {
			t.Errorf("bucketOf(%d) = %d, want 0", ns, b)
		}
	}
	for _, ns := range []int64{1 << 40, 1 << 50, math.MaxInt64} {
		if b := bucketOf(ns); b != numBuckets-1 {
			t.Errorf("bucketOf(%d) = %d, want the last bucket %d", ns, b, numBuckets-1)
		}
	}
}

// Quantiles in the open-ended last bucket report the maximum, not the
// bucket's nominal bound.
func TestQuantileBeyondRange(t *testing.T) {
	var h Histogram
	h.Record(time.Hour)
	h.Record(2 * time.Hour)
	if got := h.Quantile(0.5); got != 2*time.Hour {
		t.Errorf("p50 of {1h, 2h} = %v, want the max 2h (beyond the histogram's range)", got)
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"single", []time.Duration{time.Millisecond}, 0.99, time.Millisecond},
		{"median of 1..100ms", ramp(100, time.Millisecond), 0.5, 50 * time.Millisecond},
		{"p99 of 1..100ms", ramp(100, time.Millisecond), 0.99, 99 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Quantile(tt.q)
			if got < tt.want || float64(got-tt.want) > float64(tt.want)/64 {
				t.Fatalf("Quantile(%v) = %v, want %v within 1/64", tt.q, got, tt.want)
			}
		})
	}
}

func ramp(n int, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * step
	}
	return out
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i))
	}
}

// The classic buckets count exactly by "less than or equal": a duration
// on a bound falls in that bound's bucket, one nanosecond more in the
// next; negative durations count as zero and huge ones only in Count.
func TestBuckets(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{-time.Second, 0, time.Millisecond, time.Millisecond + 1, time.Hour} {
		h.Record(d)
	}
	b := h.Buckets()
	want := map[time.Duration]uint64{500 * time.Microsecond: 2, time.Millisecond: 3, 2500 * time.Microsecond: 4, 5 * time.Minute: 4}
	for i, bound := range BucketBounds {
		if w, ok := want[bound]; ok && b.Cumulative[i] != w {
			t.Errorf("le %v: %d, want %d", bound, b.Cumulative[i], w)
		}
		if i > 0 && b.Cumulative[i] < b.Cumulative[i-1] {
			t.Fatalf("cumulative counts decrease at %v: %v", bound, b.Cumulative)
		}
	}
	if b.Count != 5 || b.Sum != time.Hour+2*time.Millisecond+1 {
		t.Fatalf("count %d sum %v, want 5 and 1h0m0.002000001s", b.Count, b.Sum)
	}
	h.Reset()
	if b := h.Buckets(); b.Count != 0 || b.Cumulative[len(b.Cumulative)-1] != 0 {
		t.Fatalf("after Reset: %+v", b)
	}
}
