package historian

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/weir-edge/weir/model"
)

// Limits of the query API, so that one request cannot hold the process.
const (
	// MaxRawLimit caps Raw's limit.
	MaxRawLimit = 1_000_000
	// MaxBuckets caps the intervals of one Aggregate.
	MaxBuckets = 100_000
)

// ErrBadQuery is wrapped by errors about the arguments of a query.
var ErrBadQuery = errors.New("bad historian query")

// row is one stored sample of a tag.
type row struct {
	t      int64
	kind   int64
	v      any
	q      int64
	reason sql.NullString
	seq    int64
}

func (r row) sample(path string) model.Sample {
	return model.Sample{
		Path:       path,
		Value:      decodeValue(r.kind, r.v),
		Quality:    model.Quality{Code: model.QualityCode(r.q), Reason: r.reason.String},
		SourceTime: r.t,
		EdgeTime:   r.t,
		Seq:        uint64(r.seq),
	}
}

const rowCols = `s.t, s.kind, s.v, s.q, s.reason, s.seq`

// scanDay calls fn for the samples of path in [from, to) of one day file,
// in time order, at most limit of them (limit ≤ 0: all); it returns how
// many it passed. desc reverses the order.
func (s *Store) scanDay(ctx context.Context, day int64, path string, from, to int64, limit int, desc bool, fn func(row)) (int, error) {
	h, err := s.open(ctx, day, false)
	if err != nil || h == nil {
		return 0, err
	}
	q := `SELECT ` + rowCols + ` FROM samples s JOIN tags g ON g.id = s.tag WHERE g.path = ? AND s.t >= ? AND s.t < ? ORDER BY s.t`
	if desc {
		q += ` DESC`
	}
	if limit <= 0 {
		limit = -1
	}
	rows, err := h.db.QueryContext(ctx, q+` LIMIT ?`, path, from, to, limit)
	if err != nil {
		return 0, fmt.Errorf("historian: query: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.t, &r.kind, &r.v, &r.q, &r.reason, &r.seq); err != nil {
			return n, fmt.Errorf("historian: scan: %w", err)
		}
		fn(r)
		n++
	}
	return n, rows.Err()
}

// daysIn lists the existing day files that overlap [from, to).
func (s *Store) daysIn(from, to int64) ([]int64, error) {
	days, err := s.Days()
	if err != nil {
		return nil, err
	}
	lo, hi := dayOf(from), dayOf(to-1)
	return slices.DeleteFunc(days, func(d int64) bool { return d < lo || d > hi }), nil
}

// Raw returns the samples of path with from ≤ time < to (ns), oldest
// first, at most limit (1 … MaxRawLimit) of them.
func (s *Store) Raw(ctx context.Context, path string, from, to int64, limit int) ([]model.Sample, error) {
	if limit <= 0 || limit > MaxRawLimit {
		return nil, fmt.Errorf("%w: limit must be 1 to %d, got %d", ErrBadQuery, MaxRawLimit, limit)
	}
	if to <= from {
		return nil, nil
	}
	days, err := s.daysIn(from, to)
	if err != nil {
		return nil, err
	}
	var out []model.Sample
	for _, d := range days {
		if len(out) >= limit {
			break
		}
		if _, err := s.scanDay(ctx, d, path, from, to, limit-len(out), false, func(r row) { out = append(out, r.sample(path)) }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Bucket is one interval of an Aggregate: [Start, Start+interval), Start
// a multiple of the interval since the epoch. Only
// samples of good quality with a numeric (or boolean, as 0/1) value count;
// strings, arrays and NaN do not. A bad or uncertain number is not averaged
// like a good one: it is left out (AggregateOptions.AnyQuality counts it),
// and any sample of bad or uncertain quality that does not count ends the
// previous value's hold: the time after it is a gap, not the last good
// value (a device outage is not a flat line).
type Bucket struct {
	Start int64   `json:"start"`
	Count int     `json:"count"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
	First float64 `json:"first"`
	Last  float64 `json:"last"`
	// TWMean is the time-weighted mean: each value holds until the next
	// sample that counts or the next sample of bad or uncertain quality
	// (step interpolation), the value before the bucket's first sample
	// being the last one before it (if any, and not ended), over the parts
	// of the bucket with a known value.
	TWMean float64 `json:"tw_mean"`
}

// AggregateOptions are the choices of AggregateWith.
type AggregateOptions struct {
	// AnyQuality counts numbers of every quality, not only good ones
	// (the API's quality=any). A bad sample without a number still ends
	// the previous value's hold.
	AnyQuality bool

	// raw reads every sample even where rollups would serve (tests
	// compare the two paths).
	raw bool
}

// Aggregate returns the buckets of interval ns, aligned to multiples of
// it since the epoch, over [from, to) that hold at least one good numeric
// sample of path, oldest first.
func (s *Store) Aggregate(ctx context.Context, path string, from, to, interval int64) ([]Bucket, error) {
	return s.AggregateWith(ctx, path, from, to, interval, AggregateOptions{})
}

// AggregateWith is Aggregate with options.
func (s *Store) AggregateWith(ctx context.Context, path string, from, to, interval int64, opt AggregateOptions) ([]Bucket, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("%w: interval must be positive", ErrBadQuery)
	}
	if to <= from {
		return nil, nil
	}
	if n := floorDiv(to-1, interval) - floorDiv(from, interval) + 1; n > MaxBuckets || n < 0 {
		return nil, fmt.Errorf("%w: %d intervals, at most %d", ErrBadQuery, n, MaxBuckets)
	}
	prevT, prevV, havePrev, err := s.lastBefore(ctx, path, from, opt.AnyQuality)
	if err != nil {
		return nil, err
	}
	a := aggregator{from: from, to: to, interval: interval, prevT: prevT, prevV: prevV, havePrev: havePrev}
	days, err := s.daysIn(from, to)
	if err != nil {
		return nil, err
	}
	useRollups := !opt.AnyQuality && !opt.raw && interval%rollupBlock == 0
	for _, d := range days {
		if useRollups {
			err = s.scanDayRollups(ctx, d, path, from, to, &a)
		} else {
			err = s.scanNumeric(ctx, d, path, from, to, opt.AnyQuality, a.add, a.gap)
		}
		if err != nil {
			return nil, err
		}
	}
	return a.finish(), nil
}

// numericKinds are the kinds that count in aggregates, as SQL.
var numericKinds = fmt.Sprintf("(%d,%d,%d,%d)", model.KindBool, model.KindInt, model.KindUint, model.KindFloat)

// aggWhere selects the rows an aggregate looks at: those with a number,
// and those of bad or uncertain quality (which end a hold).
var aggWhere = `((kind IN ` + numericKinds + ` AND v IS NOT NULL) OR q != ` + strconv.Itoa(int(model.Good)) + `)`

// counts says whether a row selected by aggWhere is a value of the
// aggregate (true) or a gap (false).
func counts(hasNum bool, q int, anyQuality bool) bool {
	return hasNum && (anyQuality || q == int(model.Good))
}

// scanNumeric calls fn with the samples of path in [from, to) of one day
// that count (see counts), and gap with the times of the other samples
// of bad or uncertain quality, in time order. It reads the value straight
// into a float64 (NaN is stored as NULL and skipped), which is what keeps
// a day of 1 s samples quick to downsample.
func (s *Store) scanNumeric(ctx context.Context, day int64, path string, from, to int64, anyQuality bool, fn, gap func(int64, float64)) error {
	h, err := s.open(ctx, day, false)
	if err != nil || h == nil {
		return err
	}
	return scanNumericIn(ctx, h.db, `(SELECT id FROM tags WHERE path = ?)`, path, from, to, anyQuality, fn, gap)
}

// scanNumericIn is scanNumeric's query; tag is the SQL of the tag id
// and arg its parameter.
func scanNumericIn(ctx context.Context, q querier, tag string, arg any, from, to int64, anyQuality bool, fn, gap func(int64, float64)) error {
	rows, err := q.QueryContext(ctx, `SELECT t, CASE WHEN kind IN `+numericKinds+` THEN v END, q FROM samples WHERE tag = `+tag+`
		AND t >= ? AND t < ? AND `+aggWhere+` ORDER BY t`, arg, from, to)
	if err != nil {
		return fmt.Errorf("historian: query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t int64
		var f sql.NullFloat64
		var q int
		if err := rows.Scan(&t, &f, &q); err != nil {
			return fmt.Errorf("historian: scan: %w", err)
		}
		if counts(f.Valid, q, anyQuality) {
			fn(t, f.Float64)
		} else {
			gap(t, 0)
		}
	}
	return rows.Err()
}

// lastBefore finds the value that holds at t: the last sample of path
// before t that counts, unless a sample of bad or uncertain quality came
// after it (then there is none), looking back through the day files.
func (s *Store) lastBefore(ctx context.Context, path string, t int64, anyQuality bool) (int64, float64, bool, error) {
	days, err := s.Days()
	if err != nil {
		return 0, 0, false, err
	}
	for i := len(days) - 1; i >= 0; i-- {
		d := days[i]
		if d > dayOf(t) {
			continue
		}
		h, err := s.open(ctx, d, false)
		if err != nil {
			return 0, 0, false, err
		}
		if h == nil {
			continue
		}
		var ft int64
		var fv sql.NullFloat64
		var q int
		err = h.db.QueryRowContext(ctx, `SELECT t, CASE WHEN kind IN `+numericKinds+` THEN v END, q FROM samples WHERE tag = (SELECT id FROM tags WHERE path = ?)
			AND t < ? AND `+aggWhere+` ORDER BY t DESC LIMIT 1`, path, t).Scan(&ft, &fv, &q)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, 0, false, fmt.Errorf("historian: last before: %w", err)
		}
		if !counts(fv.Valid, q, anyQuality) {
			return 0, 0, false, nil
		}
		return ft, fv.Float64, true, nil
	}
	return 0, 0, false, nil
}

// aggregator folds time-ordered samples into buckets.
type aggregator struct {
	from, to, interval int64
	prevT              int64
	prevV              float64
	havePrev           bool
	out                []Bucket
	cur                *Bucket
	sum                float64
	twSum              float64 // ∫ value dt within the current bucket
	twSpan             int64   // covered time within the current bucket
	tLast              int64   // time up to which twSum is accumulated
	// A value that held until a gap before the first counted sample of
	// its bucket, so that no bucket was open: it still weighs from the
	// bucket's start to the gap once the bucket opens.
	endT    int64
	endV    float64
	endHeld bool
}

// start is the start of t's bucket: a multiple of the interval since the
// epoch (UTC), not an offset from `from`, so that a chart asking for a
// sliding window gets the same edges on every request (the first bucket
// may start before from; only samples from `from` on count in it).
func (a *aggregator) start(t int64) int64 { return floorDiv(t, a.interval) * a.interval }

// floorDiv is a/b rounded down (b > 0), also for negative a.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// integrate adds the held value prevV from tLast up to t (same bucket).
func (a *aggregator) integrate(t int64) {
	if a.havePrev && t > a.tLast {
		a.twSum += a.prevV * float64(t-a.tLast)
		a.twSpan += t - a.tLast
	}
	a.tLast = t
}

func (a *aggregator) add(t int64, f float64) {
	bs := a.start(t)
	if a.cur != nil && a.cur.Start != bs {
		a.close()
	}
	if a.cur == nil {
		a.cur = &Bucket{Start: bs, Min: f, Max: f, First: f}
		a.sum, a.twSum, a.twSpan, a.tLast = 0, 0, 0, max(bs, a.from)
		if a.endHeld && a.start(a.endT) == bs {
			a.twSum, a.twSpan = a.endV*float64(a.endT-a.tLast), a.endT-a.tLast
		}
		a.endHeld = false
	}
	a.integrate(t)
	b := a.cur
	b.Count++
	a.sum += f
	b.Min, b.Max, b.Last = min(b.Min, f), max(b.Max, f), f
	a.prevT, a.prevV, a.havePrev = t, f, true
}

// gap ends the held value at t (a sample of bad or uncertain quality):
// the time after it has no value until the next sample that counts.
func (a *aggregator) gap(t int64, _ float64) {
	if a.cur != nil && a.cur.Start != a.start(t) {
		a.close()
	}
	if a.cur != nil {
		a.integrate(t)
	} else if a.havePrev {
		a.endT, a.endV, a.endHeld = t, a.prevV, true
	}
	a.havePrev = false
}

func (a *aggregator) close() {
	b := a.cur
	end := min(b.Start+a.interval, a.to)
	a.integrate(end)
	b.Mean = a.sum / float64(b.Count)
	if a.twSpan > 0 {
		b.TWMean = a.twSum / float64(a.twSpan)
	} else {
		b.TWMean = b.Last
	}
	a.out = append(a.out, *b)
	a.cur = nil
}

func (a *aggregator) finish() []Bucket {
	if a.cur != nil {
		a.close()
	}
	return a.out
}

// Latest returns the newest sample of each path (every tag when paths is
// empty) found in the day files, newest file first.
func (s *Store) Latest(ctx context.Context, paths []string) (map[string]model.Sample, error) {
	days, err := s.Days()
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	out := map[string]model.Sample{}
	for i := len(days) - 1; i >= 0; i-- {
		if len(paths) > 0 && len(out) == len(want) {
			break
		}
		h, err := s.open(ctx, days[i], false)
		if err != nil {
			return nil, err
		}
		if h == nil {
			continue
		}
		rows, err := h.db.QueryContext(ctx, `SELECT g.path, `+rowCols+` FROM tags g JOIN samples s ON s.tag = g.id
			AND s.t = (SELECT max(t) FROM samples WHERE tag = g.id)`)
		if err != nil {
			return nil, fmt.Errorf("historian: latest: %w", err)
		}
		for rows.Next() {
			var p string
			var r row
			if err := rows.Scan(&p, &r.t, &r.kind, &r.v, &r.q, &r.reason, &r.seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("historian: latest: %w", err)
			}
			if _, done := out[p]; done || (len(paths) > 0 && !want[p]) {
				continue
			}
			out[p] = r.sample(p)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("historian: latest: %w", err)
		}
	}
	return out, nil
}

// Tags lists every tag path in the day files, sorted.
func (s *Store) Tags(ctx context.Context) ([]string, error) {
	days, err := s.Days()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, d := range days {
		h, err := s.open(ctx, d, false)
		if err != nil {
			return nil, err
		}
		if h == nil {
			continue
		}
		rows, err := h.db.QueryContext(ctx, `SELECT path FROM tags`)
		if err != nil {
			return nil, fmt.Errorf("historian: tags: %w", err)
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return nil, err
			}
			seen[p] = true
		}
		rows.Close()
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}
