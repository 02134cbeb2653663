package latency

import (
	"testing"
	"time"
)

func TestBucketsAreMonotonicAndTight(t *testing.T) {
	prev := -1
	for _, ns := range []int64{0, 1, 15, 16, 17, 31, 32, 1000, 1 << 20, 123456789, 1 << 39} {
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
