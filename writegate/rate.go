package writegate

import (
	"sync"
	"time"
)

// maxBuckets bounds the rate state. Buckets exist only for paths that
// passed every other check (a policy, the caller, the value), so the map
// holds writable tags; when it is full anyway, buckets that have refilled
// completely are dropped, as a fresh bucket would be identical.
const maxBuckets = 10000

// bucket is a token bucket: up to rate.n tokens, refilled at rate.n per
// rate.per.
type bucket struct {
	tokens float64
	last   time.Time
}

// buckets holds one bucket per tag path.
type buckets struct {
	mu sync.Mutex
	m  map[string]*bucket
}

// take refills path's bucket up to now and takes a token if there is one.
func (bs *buckets) take(path string, r rate, now time.Time) bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.m[path]
	if !ok {
		if len(bs.m) >= maxBuckets {
			bs.prune(now)
		}
		b = &bucket{tokens: r.n, last: now}
		bs.m[path] = b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(r.n, b.tokens+r.n*float64(el)/float64(r.per))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune drops the buckets that are full by now: every bucket refills
// completely within an hour (the longest period) of its last write.
func (bs *buckets) prune(now time.Time) {
	for p, b := range bs.m {
		if now.Sub(b.last) >= time.Hour {
			delete(bs.m, p)
		}
	}
}
