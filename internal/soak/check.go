package soak

import (
	"fmt"
	"sort"
	"sync"
)

// Checker follows every sample the broker accepted from the gateway and
// works out, per gateway run, what was lost, duplicated or reordered.
//
// The model: a gateway run numbers its samples first_seq, first_seq+1, …
// (first_seq is logged at start and grows from run to run), and its Pushes
// to the durable buffer complete in sequence order. So if the buffer had
// accepted P samples at a reading, every id in [first_seq, first_seq+P) was
// accepted, and so was every id below one that was delivered. Such an id
// never delivered is lost — unless it may have been dead-lettered (a
// poison sample published during the run: each one excuses one gap).
// Ids above both bounds may be missing: the kill came before their Push
// returned.
//
// Order is checked per tag: a tag's ids must arrive increasing. An id seen
// before is a duplicate (an at-least-once redelivery, allowed and counted);
// a new id lower than the tag's highest so far is an order violation.
type Checker struct {
	mu     sync.Mutex
	seen   map[uint64]uint32 // id → times delivered
	high   map[string]uint64 // tag → highest id delivered
	dups   map[string]int
	order  map[string]int
	stray  int // ids below the first run's first_seq
	runs   []RunInfo
	sorted bool
	// dead holds the ids found in the sink's dead-letter store once the
	// gateway has stopped; nil until then.
	dead map[uint64]bool
}

// DeadLettered records the ids the gateway's dead-letter store holds: a
// gap is excused only for an id found there, never by count alone.
func (c *Checker) DeadLettered(ids []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead == nil {
		c.dead = map[uint64]bool{}
	}
	for _, id := range ids {
		c.dead[id] = true
	}
}

// excused counts the ids in [from, to) that were dead-lettered; until the
// store was read, at most poison of them (the count the harness expects).
func (c *Checker) excused(from, to uint64, poison int) int {
	if c.dead == nil {
		return min(int(to-from), poison)
	}
	n := 0
	for id := from; id < to; id++ {
		if c.dead[id] {
			n++
		}
	}
	return n
}

// RunInfo is what the harness knows of one gateway process.
type RunInfo struct {
	FirstSeq uint64
	// Accepted is the sink buffer's pushed count at the last reading.
	Accepted uint64
	// Poison is how many poison samples may have been dead-lettered while
	// it ran: one per poison message published, and one per broker loss
	// once the poison metric exists (the Sparkplug host marks it stale).
	Poison int
	// DeadLettered is the gateway's dead_lettered figure at the last
	// reading, when it reports one.
	DeadLettered uint64
	// Killed: ended by SIGKILL (else: SIGTERM, or it exited by itself).
	Killed bool
}

// NewChecker returns an empty checker.
func NewChecker() *Checker {
	return &Checker{seen: map[uint64]uint32{}, high: map[string]uint64{}, dups: map[string]int{}, order: map[string]int{}}
}

// Observe records one delivery of id under tag. Safe for concurrent use.
func (c *Checker) Observe(tag string, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.seen[id]
	c.seen[id] = n + 1
	switch {
	case n > 0:
		c.dups[tag]++
	case id < c.high[tag]:
		c.order[tag]++
	}
	if id > c.high[tag] {
		c.high[tag] = id
	}
}

// AddRun registers a run, in start order, and returns its index.
func (c *Checker) AddRun(r RunInfo) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs = append(c.runs, r)
	return len(c.runs) - 1
}

// UpdateRun changes what is known of run i.
func (c *Checker) UpdateRun(i int, f func(*RunInfo)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.runs[i])
}

// RunResult is the verdict on one run.
type RunResult struct {
	RunInfo
	Delivered int    // distinct ids of the run delivered
	Missing   int    // accepted ids never delivered
	Excused   int    // of those, possibly dead-lettered poison
	Lost      int    // Missing - Excused, at least 0
	FirstGap  uint64 // the first missing accepted id, when Missing > 0
}

// Result is the verdict on the whole soak.
type Result struct {
	Runs         []RunResult
	Delivered    int // distinct ids
	Deliveries   int // including duplicates
	Lost         int
	Excused      int
	Stray        int // ids that belong to no run
	Duplicates   map[string]int
	Order        map[string]int
	DeadLettered uint64
}

// DuplicateCount and OrderViolations sum the per-tag figures.
func (r Result) DuplicateCount() int  { return sum(r.Duplicates) }
func (r Result) OrderViolations() int { return sum(r.Order) }

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Result computes the verdict on what was delivered so far.
func (c *Checker) Result() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint64, 0, len(c.seen))
	res := Result{Duplicates: map[string]int{}, Order: map[string]int{}}
	for id, n := range c.seen {
		ids = append(ids, id)
		res.Deliveries += int(n)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for k, v := range c.dups {
		res.Duplicates[k] = v
	}
	for k, v := range c.order {
		res.Order[k] = v
	}
	res.Delivered = len(ids)
	j := 0
	if len(c.runs) > 0 {
		for j < len(ids) && ids[j] < c.runs[0].FirstSeq {
			j++
		}
		res.Stray = j
	}
	for i, r := range c.runs {
		end := ^uint64(0)
		if i+1 < len(c.runs) {
			end = c.runs[i+1].FirstSeq
		}
		rr := RunResult{RunInfo: r}
		// The accepted span: [first, first+Accepted) and up to the highest
		// id delivered.
		top := r.FirstSeq + r.Accepted // exclusive
		next := r.FirstSeq             // next id expected
		excused := 0
		for ; j < len(ids) && ids[j] < end; j++ {
			id := ids[j]
			if id > next && rr.Missing == 0 {
				rr.FirstGap = next
			}
			if id > next {
				excused += c.excused(next, id, r.Poison-excused)
			}
			rr.Missing += int(id - next)
			next = id + 1
			rr.Delivered++
		}
		if top > next {
			if rr.Missing == 0 {
				rr.FirstGap = next
			}
			excused += c.excused(next, top, r.Poison-excused)
			rr.Missing += int(top - next)
		}
		rr.Excused = min(rr.Missing, excused)
		rr.Lost = rr.Missing - rr.Excused
		res.Lost += rr.Lost
		res.Excused += rr.Excused
		res.DeadLettered += r.DeadLettered
		res.Runs = append(res.Runs, rr)
	}
	return res
}

// Failed says why the soak failed, or "" when nothing accepted was lost
// and no tag was reordered.
func (r Result) Failed() string {
	switch {
	case r.Lost > 0:
		for i, rr := range r.Runs {
			if rr.Lost > 0 {
				return fmt.Sprintf("%d accepted samples lost (first: run %d, id %d)", r.Lost, i, rr.FirstGap)
			}
		}
	case r.OrderViolations() > 0:
		return fmt.Sprintf("%d order violations", r.OrderViolations())
	case r.Stray > 0:
		return fmt.Sprintf("%d ids belong to no run", r.Stray)
	}
	return ""
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
