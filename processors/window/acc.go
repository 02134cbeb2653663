package window

import (
	"math"
	"math/rand/v2"
	"slices"
)

// acc accumulates the samples of one pane (a slide-long slice of time) of
// one tag. Windows are merged from panes when they close, so a sample is
// added once however many sliding windows it belongs to.
type acc struct {
	n             int64
	sum           float64
	mean, m2      float64 // Welford's running mean and sum of squared deviations
	min, max      float64
	firstT, lastT int64
	first, last   float64
	uncertain     bool
	vals          []float64 // for percentiles: all values, or a reservoir of keep of them
}

// add adds v taken at t. keep bounds vals (0: percentiles not needed).
func (a *acc) add(v float64, t int64, uncertain bool, keep int, rng *rand.Rand) {
	a.n++
	a.sum += v
	d := v - a.mean
	a.mean += d / float64(a.n)
	a.m2 += d * (v - a.mean)
	if a.n == 1 || v < a.min {
		a.min = v
	}
	if a.n == 1 || v > a.max {
		a.max = v
	}
	if a.n == 1 || t < a.firstT {
		a.first, a.firstT = v, t
	}
	if a.n == 1 || t >= a.lastT {
		a.last, a.lastT = v, t
	}
	a.uncertain = a.uncertain || uncertain
	switch {
	case keep == 0:
	case len(a.vals) < keep:
		a.vals = append(a.vals, v)
	default: // reservoir sampling (algorithm R): each value kept with probability keep/n
		if j := rng.Int64N(a.n); j < int64(keep) {
			a.vals[j] = v
		}
	}
}

// merge folds b into a (Chan et al.'s parallel variance); vals are
// gathered separately.
func (a *acc) merge(b *acc) {
	if b.n == 0 {
		return
	}
	if a.n == 0 {
		vals := a.vals
		*a = *b
		a.vals = vals
		return
	}
	n := a.n + b.n
	d := b.mean - a.mean
	a.mean += d * float64(b.n) / float64(n)
	a.m2 += b.m2 + d*d*float64(a.n)*float64(b.n)/float64(n)
	a.n = n
	a.sum += b.sum
	a.min = math.Min(a.min, b.min)
	a.max = math.Max(a.max, b.max)
	if b.firstT < a.firstT {
		a.first, a.firstT = b.first, b.firstT
	}
	if b.lastT >= a.lastT {
		a.last, a.lastT = b.last, b.lastT
	}
	a.uncertain = a.uncertain || b.uncertain
}

// stddev is the sample standard deviation (n−1); 0 for one sample.
func (a *acc) stddev() float64 {
	if a.n < 2 {
		return 0
	}
	return math.Sqrt(a.m2 / float64(a.n-1))
}

// percentile of sorted values by linear interpolation between closest
// ranks (the R-7 / NumPy default): p50 of [1 2 3 4] is 2.5.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	r := q / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(r))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := r - float64(lo)
	return sorted[lo] + f*(sorted[lo+1]-sorted[lo])
}

func sortFloats(v []float64) { slices.Sort(v) }
