package durable

import "github.com/weir-edge/weir/model"

// tailCache keeps the samples of the most recent pushes, by position, so
// that a sink keeping up is served from memory: no store iterator and no
// decoding on the live path, which halves the time a batch takes to go
// round (Next → Write → Ack) and so the latency of whatever queues behind
// it. The store stays the truth: a position not in the cache (older than
// the cache reaches back, or from an earlier run) is read from Pebble.
//
// It also knows which positions end a chunk (each add is one chunk), so
// that an Ack of a cached batch deletes its chunks by key.
//
// It holds copies of the Sample values (strings and arrays are shared, as
// in the memory buffer). Acked positions are forgotten, so it grows (by
// doubling, up to max samples) only as far as the sink lags; when full,
// the oldest positions are forgotten too. Not safe for concurrent use:
// the Buffer calls it with mu held.
type tailCache struct {
	max        int
	samples    []model.Sample
	sizes      []int32 // encoded record sizes, for the byte accounting
	last       []bool  // the position ends a chunk
	start, end uint64  // positions held: [start, end)
}

// tailCacheSamples bounds the cache: 32768 samples is about 4 MiB, enough
// to hold several full batches of a sink that keeps up under bursts
// (50 devices × 200 tags polled at once is 10,000 samples).
const tailCacheSamples = 32768

// add records samples as stored at positions pos, pos+1, … in one chunk;
// sample i's encoded record spans offs[i]..offs[i+1]. A gap since the last
// add starts the cache afresh.
func (c *tailCache) add(pos uint64, samples []model.Sample, offs []int) {
	if c.max <= 0 || len(samples) == 0 {
		return
	}
	if pos != c.end {
		c.start, c.end = pos, pos
	}
	if skip := len(samples) - c.max; skip > 0 {
		// More than the cache holds: keep the newest.
		samples, offs = samples[skip:], offs[skip:]
		pos += uint64(skip)
		c.start, c.end = pos, pos
	}
	need := int(c.end-c.start) + len(samples)
	if need > len(c.samples) && len(c.samples) < c.max {
		c.grow(min(c.max, max(need, 2*len(c.samples), 1024)))
	}
	if over := need - len(c.samples); over > 0 {
		c.start += uint64(over)
	}
	n := uint64(len(c.samples))
	for i := range samples {
		j := (pos + uint64(i)) % n
		c.samples[j] = samples[i]
		c.sizes[j] = int32(offs[i+1] - offs[i])
		c.last[j] = i == len(samples)-1
	}
	c.end = pos + uint64(len(samples))
}

// grow reallocates the ring to size, keeping the positions held.
func (c *tailCache) grow(size int) {
	samples := make([]model.Sample, size)
	sizes := make([]int32, size)
	last := make([]bool, size)
	if old := uint64(len(c.samples)); old > 0 {
		for p := c.start; p < c.end; p++ {
			samples[p%uint64(size)] = c.samples[p%old]
			sizes[p%uint64(size)] = c.sizes[p%old]
			last[p%uint64(size)] = c.last[p%old]
		}
	}
	c.samples, c.sizes, c.last = samples, sizes, last
}

// get appends to out and outSizes the samples at from, from+1, … up to n
// of them, as far as the cache holds them contiguously, and returns the
// slices. Nothing is appended when from is not held.
func (c *tailCache) get(from uint64, n int, out []model.Sample, outSizes []int32) ([]model.Sample, []int32) {
	if from < c.start || from >= c.end || n <= 0 {
		return out, outSizes
	}
	end := min(c.end, from+uint64(n))
	size := uint64(len(c.samples))
	for p := from; p < end; p++ {
		out = append(out, c.samples[p%size])
		outSizes = append(outSizes, c.sizes[p%size])
	}
	return out, outSizes
}

// ends appends to dst the positions in [from, to) that end a chunk (the
// keys of those chunks) and reports true, or false when the cache does not
// hold all of [from, to).
func (c *tailCache) ends(from, to uint64, dst []uint64) ([]uint64, bool) {
	if from < c.start || to > c.end || len(c.last) == 0 {
		return dst, false
	}
	size := uint64(len(c.last))
	for p := from; p < to; p++ {
		if c.last[p%size] {
			dst = append(dst, p)
		}
	}
	return dst, true
}

// at is the sample at pos, if held.
func (c *tailCache) at(pos uint64) (model.Sample, bool) {
	if pos < c.start || pos >= c.end {
		return model.Sample{}, false
	}
	return c.samples[pos%uint64(len(c.samples))], true
}

// forget drops the positions before pos (acked or dropped): they are
// never read again, and a ring that only has to hold what is not yet
// acked stays as small as the sink's lag.
func (c *tailCache) forget(pos uint64) {
	if pos <= c.start {
		return
	}
	pos = min(pos, c.end)
	if size := uint64(len(c.samples)); size > 0 {
		for p := c.start; p < pos; p++ {
			c.samples[p%size] = model.Sample{} // release strings and arrays
		}
	}
	c.start = pos
}

// reset forgets everything, releasing what the samples reference.
func (c *tailCache) reset() {
	clear(c.samples)
	c.start, c.end = 0, 0
}
