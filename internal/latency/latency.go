// Package latency records durations in a fixed-size log-linear histogram
// (like HdrHistogram at 1/64 resolution per power of two), so quantiles cost
// no allocation and Record is a few atomic operations, cheap enough to call
// per sample.
package latency

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits    = 6 // 64 sub-buckets per power of two: ≤ 1.6% relative error (~1 ms at 100 ms)
	subBuckets = 1 << subBits
	maxExp     = 40 // up to 2^40 ns ≈ 18 minutes; larger values land in the last bucket
	numBuckets = (maxExp - subBits + 1) * subBuckets
)

// Histogram counts durations. The zero value is ready; all methods are safe
// for concurrent use.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
	// classic counts the same durations in BucketBounds (the last slot is
	// beyond them), exactly, for a Prometheus histogram.
	classic [len(BucketBounds) + 1]atomic.Uint64
}

// BucketBounds are the upper bounds of the Prometheus histogram buckets:
// from half a millisecond (the gateway's own share of a live sample's
// latency) through seconds (a slow destination) to five minutes (a
// backlog replayed after an outage), about three per decade.
var BucketBounds = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
}

// Buckets is a snapshot in the shape of a Prometheus classic histogram.
type Buckets struct {
	// Cumulative[i] counts the durations ≤ BucketBounds[i].
	Cumulative [len(BucketBounds)]uint64
	Count      uint64 // all durations, including those beyond the last bound
	Sum        time.Duration
}

func bucketOf(ns int64) int {
	if ns < subBuckets {
		if ns < 0 {
			ns = 0
		}
		return int(ns)
	}
	exp := 63 - bits.LeadingZeros64(uint64(ns)) // ≥ subBits
	idx := (exp-subBits+1)*subBuckets + int((uint64(ns)>>(exp-subBits))&(subBuckets-1))
	if idx >= numBuckets {
		return numBuckets - 1
	}
	return idx
}

// upperBound is the largest value that falls into bucket i.
func upperBound(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	exp := i/subBuckets + subBits - 1
	sub := i % subBuckets
	return int64(subBuckets+sub+1)<<(exp-subBits) - 1
}

// Record adds one duration; a negative one (a device clock ahead of the
// gateway's) counts as zero.
func (h *Histogram) Record(d time.Duration) {
	ns := max(int64(d), 0)
	h.counts[bucketOf(ns)].Add(1)
	h.classic[classicOf(d)].Add(1)
	h.total.Add(1)
	h.sum.Add(ns)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

// classicOf is the index of the first bound ≥ d (len(BucketBounds) beyond).
func classicOf(d time.Duration) int {
	lo, hi := 0, len(BucketBounds)
	for lo < hi {
		m := (lo + hi) / 2
		if BucketBounds[m] < d {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Buckets snapshots the classic buckets. Count is their sum, so the
// snapshot is consistent even while Record runs; Sum may lag by the
// durations being recorded at that instant.
func (h *Histogram) Buckets() Buckets {
	var b Buckets
	for i := range h.classic {
		b.Count += h.classic[i].Load()
		if i < len(b.Cumulative) {
			b.Cumulative[i] = b.Count
		}
	}
	b.Sum = time.Duration(h.sum.Load())
	return b
}

// Count is the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest recorded duration (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the average recorded duration.
func (h *Histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile returns the upper bound of the bucket holding quantile q (0..1),
// never more than Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			if i == numBuckets-1 {
				// The last bucket is open-ended (≥ 2^40 ns, 18 min: a
				// backlog replayed after a long outage): its bound says
				// nothing, the maximum is the honest answer.
				return h.Max()
			}
			return min(time.Duration(upperBound(i)), h.Max())
		}
	}
	return h.Max()
}

// Reset clears the histogram. Not atomic with concurrent Records.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	for i := range h.classic {
		h.classic[i].Store(0)
	}
	h.total.Store(0)
	h.sum.Store(0)
	h.max.Store(0)
}
