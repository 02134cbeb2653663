package historian

import (
	"math"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/match"
)

// Compression at ingest: which samples of a tag are stored.
//
// Deadband stores a sample when it moved more than the band from the last
// STORED value (not the last seen one, so a slow drift is stored once it
// has drifted a band). Read back with "each value holds until the next",
// as the time-weighted mean does, every dropped sample is within the band
// of the stored value before it.
//
// Swinging door (SDT) keeps an archived point A and a held point H, the
// newest sample. A new sample P replaces H when the straight line A→P is
// within the deviation of every sample since A; otherwise H is archived
// and P is held against it. The doors are the slope bounds lo/hi: the
// line A→P is within the deviation of sample i exactly when its slope
// lies in [(vi−dev−vA)/dti, (vi+dev−vA)/dti], so lo is the max of the
// lower and hi the min of the upper bounds over the samples since A. This
// is the strict form of the algorithm: the classic one archives H when the
// doors cross, which leaves H's own segment unchecked; here a segment is
// only ever extended to a point whose line was checked, so linear
// interpolation between stored points is within the deviation of every
// original sample (compress_test.go proves it over random walks, sines
// and steps).
//
// Both store the first sample of a tag, every sample whose quality
// (code or reason) or value kind differs from the stored one, every
// change of a non-numeric value (string, array, bool; NaN counts as a
// value), and a heartbeat: a sample at least max_interval after the last
// stored one is stored (swinging door first drops or archives its held
// point, as the line through it decides).
// A sample not newer than the newest seen for its tag (a replay) is stored
// as it comes and the tag starts again from the next sample.
//
// Acknowledgement. The buffer forgets a batch once Write returns nil, so
// nothing it held may live only in memory then. Dropped samples are
// acknowledged (they were processed: the stored points stand for them).
// The held point of swinging door is the one sample that is neither
// stored nor dropped for good, so every Write ends by storing each held
// point it moved, provisionally: when a later sample replaces it, the
// same Write deletes that row (after the rows that replace it are
// inserted: days are written newest first). On disk there is thus always
// a valid compression of every acknowledged sample: the archived points
// and the held one, whose line from A was checked. A crash or a restart
// loses only the in-memory doors; the first sample of a tag after it is
// stored and compression starts again from it. Close has nothing left to
// write. If a Write fails, the compressor's state is rolled back, so the
// retry of the batch computes the same rows (and INSERT OR REPLACE makes
// the rows already written harmless).

type compMethod uint8

const (
	methodNone compMethod = iota
	methodDeadband
	methodSDT
)

type compSettings struct {
	method      compMethod
	band        float64
	maxInterval int64 // ns
}

// tagState is one tag's compression state. a is the last archived
// sample; h the held one (swinging door) when hasH.
type tagState struct {
	set      *compSettings
	has      bool // a is set
	a, h     model.Sample
	av       float64 // a's value when numeric
	hasH     bool
	hOnDisk  bool // h is stored provisionally
	lo, hi   float64
	seen     int64 // newest sample time of the tag
	numericA bool
}

// compressor is not safe for concurrent use: the sink calls it under its
// write lock (the engine writes one batch at a time per sink).
type compressor struct {
	def   compSettings
	rules []compSettings
	index *match.Index
	tags  map[string]*tagState // tags whose method is not none
	none  map[string]bool      // tags left uncompressed (cache of the lookup)
	undo  map[string]*tagState // state before the current batch; nil value: tag was new
}

// compOut is what a batch becomes.
type compOut struct {
	store    []model.Sample // rows to insert
	remove   []model.Sample // provisional held points to delete (tag, time)
	stored   uint64         // samples stored for good
	dropped  uint64         // samples the compression discarded
	withheld int            // held points moved this batch (stored provisionally)
}

func newCompressor(c Compression) (*compressor, error) {
	cp := &compressor{def: c.compiled(), tags: map[string]*tagState{}, none: map[string]bool{}}
	if len(c.Tags) > 0 {
		lists := make([][]string, len(c.Tags))
		for i, r := range c.Tags {
			lists[i] = r.Match
			cp.rules = append(cp.rules, r.compiled())
		}
		x, err := match.NewIndex(lists)
		if err != nil {
			return nil, err
		}
		cp.index = x
	}
	return cp, nil
}

// state is the tag's state, nil when the tag is not compressed.
func (c *compressor) state(path string) *tagState {
	if st, ok := c.tags[path]; ok {
		if _, saved := c.undo[path]; !saved {
			cp := *st
			c.undo[path] = &cp
		}
		return st
	}
	if c.none[path] {
		return nil
	}
	set := &c.def
	if c.index != nil {
		if i := c.index.Lookup(path); i >= 0 {
			set = &c.rules[i]
		}
	}
	if set.method == methodNone {
		c.none[path] = true
		return nil
	}
	st := &tagState{set: set}
	c.tags[path] = st
	c.undo[path] = nil
	return st
}

// process turns a batch (valid samples) into rows. commit or rollback
// must follow.
func (c *compressor) process(batch []model.Sample) compOut {
	c.undo = map[string]*tagState{}
	out := compOut{store: make([]model.Sample, 0, len(batch)/4+16)}
	for _, sm := range batch {
		st := c.state(sm.Path)
		if st == nil {
			out.store = append(out.store, sm)
			out.stored++
			continue
		}
		c.sample(st, sm, &out)
	}
	// Held points this batch moved are stored before the batch is acked.
	for path := range c.undo {
		if st := c.tags[path]; st.hasH && !st.hOnDisk {
			out.store = append(out.store, st.h)
			st.hOnDisk = true
			out.withheld++
		}
	}
	return out
}

// rollback restores the state from before process, for a failed write.
func (c *compressor) rollback() {
	for p, old := range c.undo {
		if old == nil {
			delete(c.tags, p)
		} else {
			*c.tags[p] = *old
		}
	}
	c.undo = nil
}

func (c *compressor) commit() { c.undo = nil }

func (c *compressor) sample(st *tagState, sm model.Sample, out *compOut) {
	t := sampleTime(sm)
	if !st.has || t <= st.seen || sm.Quality != st.a.Quality || sm.Value.Kind() != st.a.Value.Kind() {
		replay := st.has && t <= st.seen
		c.restart(st, sm, out)
		if replay {
			st.has = false // the next sample starts the tag again
		}
		return
	}
	st.seen = t
	v, numeric := numericValue(sm.Value)
	set := st.set
	if !numeric || !st.numericA {
		if sm.Value.Equal(st.a.Value) && t-sampleTime(st.a) < set.maxInterval {
			out.dropped++
			return
		}
		c.restart(st, sm, out)
		return
	}
	if set.method == methodDeadband {
		if d := v - st.av; d > set.band || -d > set.band || t-sampleTime(st.a) >= set.maxInterval {
			c.restart(st, sm, out)
		} else {
			out.dropped++
		}
		return
	}
	// Swinging door.
	if st.hasH {
		if s := (v - st.av) / float64(t-sampleTime(st.a)); s >= st.lo && s <= st.hi {
			// The line A→P covers every sample since A: P replaces H.
			out.dropped++
			if st.hOnDisk {
				out.remove = append(out.remove, st.h)
			}
			st.hasH = false
		} else {
			c.archiveHeld(st, out)
			st.lo, st.hi = math.Inf(-1), math.Inf(1)
		}
	} else {
		st.lo, st.hi = math.Inf(-1), math.Inf(1)
	}
	ta := sampleTime(st.a)
	if t-ta >= set.maxInterval { // the heartbeat
		c.restart(st, sm, out)
		return
	}
	dt := float64(t - ta)
	st.h, st.hasH, st.hOnDisk = sm, true, false
	st.lo = max(st.lo, (v-set.band-st.av)/dt)
	st.hi = min(st.hi, (v+set.band-st.av)/dt)
}

// archiveHeld makes the held point the archived one.
func (c *compressor) archiveHeld(st *tagState, out *compOut) {
	if !st.hOnDisk {
		out.store = append(out.store, st.h)
	}
	out.stored++
	st.a, st.hasH, st.hOnDisk = st.h, false, false
	st.av, st.numericA = numericValue(st.a.Value)
}

// restart archives the held point, stores sm and makes it the archived
// point.
func (c *compressor) restart(st *tagState, sm model.Sample, out *compOut) {
	if st.hasH {
		c.archiveHeld(st, out)
	}
	out.store = append(out.store, sm)
	out.stored++
	st.a, st.has, st.hasH, st.hOnDisk = sm, true, false, false
	st.av, st.numericA = numericValue(sm.Value)
	st.seen = max(st.seen, sampleTime(sm))
}

// numericValue: ints, uints and finite floats are compressed as numbers;
// booleans, strings, arrays and NaN/Inf are stored on change.
func numericValue(v model.Value) (float64, bool) {
	switch v.Kind() {
	case model.KindInt, model.KindUint, model.KindFloat:
		f, _ := v.Float64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false
		}
		return f, true
	}
	return 0, false
}
