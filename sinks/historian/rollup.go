package historian

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/weir-edge/weir/model"
)

// Rollups: per tag, per fixed block of time, a summary of the rows an
// aggregate looks at, written at ingest, so that a chart over a day reads
// 2,880 summaries instead of 86,400 samples of a 1 s tag (SQLite spends
// ~0.5 µs per row read; the rows are what cost, not the arithmetic).
//
// A rollup row is a pure function of the tag's rows in its block that
// aggWhere selects, under the default semantics (only good numbers
// count; any other selected row is a gap that ends the value before it).
// It holds what the aggregator needs to give exactly the result it would
// give fed the rows one by one (aggregator.addBlock): the count, min, max,
// sum, first and last of the counted values; t0 and tl, the times of the
// first and last selected row; held, whether the last one counted (its
// value then holds past tl); tw and span, the time-weighted integral and
// the covered time within [t0, tl). Blocks whose rows are all gaps have a
// row too (n = 0): they end a hold.
//
// rollup_mark(tag, upto) is the watermark: every block that starts before
// upto has its rollup row, or has no selected rows. The block at upto is
// the open one; rows from upto on are read raw by queries. upto only moves
// forward: a sample in a later block closes the blocks before it.
//
// The writer keeps, per tag of a day file open for writing, the summary
// of its open block as the rows arrive (rollState), and the closed ones
// until rollupFlush of them are written with the mark, so the common
// case, samples in time order, costs no extra read. Anything else (a
// sample before upto: out of order, a replay, compression deleting its
// held point; or a change after it that is not an append) is settled
// from the rows on disk, in the same transaction as the inserts, so
// rollups and rows can never disagree after a crash. After a restart the
// summaries are empty and the blocks from each tag's mark on are read
// back from disk once, when they are written.

// RollupBlock is the block of a rollup: 30 s, aligned to the epoch (and
// so to UTC days: a day is 2,880 blocks). Aggregates whose interval is a
// multiple of it read the rollups instead of every sample, which is why
// the API rounds a chart's interval (points=N) up to a multiple of it.
const RollupBlock = 30 * time.Second

const rollupBlock = int64(RollupBlock)

const rollupSchema = `
CREATE TABLE IF NOT EXISTS rollups (
	tag   INTEGER NOT NULL,
	b     INTEGER NOT NULL,
	n     INTEGER NOT NULL,
	mn    REAL, mx REAL, sum REAL, first REAL, last REAL,
	t0    INTEGER NOT NULL,
	tl    INTEGER NOT NULL,
	held  INTEGER NOT NULL,
	tw    REAL,
	span  INTEGER NOT NULL,
	PRIMARY KEY (tag, b)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_mark (tag INTEGER PRIMARY KEY, upto INTEGER NOT NULL);`

// rollupRow is the summary of one tag's block (see above).
type rollupRow struct {
	b, n                       int64
	min, max, sum, first, last float64
	t0, tl                     int64
	held                       bool
	tw                         float64
	span                       int64
	any                        bool // a row was folded in (not stored: a stored row always has one)
}

// add folds in one row selected by aggWhere; rows come in time order.
func (r *rollupRow) add(t int64, counted bool, f float64) {
	if !r.any {
		r.t0, r.any = t, true
	} else if r.held {
		r.tw += r.last * float64(t-r.tl)
		r.span += t - r.tl
	}
	r.tl, r.held = t, counted
	if !counted {
		return
	}
	if r.n == 0 {
		r.min, r.max, r.first = f, f, f
	} else {
		r.min, r.max = min(r.min, f), max(r.max, f)
	}
	r.n++
	r.sum += f
	r.last = f
}

// blockOf is the start of t's block.
func blockOf(t int64) int64 { return floorDiv(t, rollupBlock) * rollupBlock }

// aggOf is how a sample looks to an aggregate, as scanNumeric reads it
// back: selected (aggWhere), counted (default semantics) and its number.
func aggOf(sm *model.Sample) (selected, counted bool, f float64) {
	hasNum := true
	switch v := sm.Value; v.Kind() { // as encodeValue stores it, without boxing
	case model.KindBool:
		if v.AsBool() {
			f = 1
		}
	case model.KindInt:
		f = float64(v.AsInt())
	case model.KindUint:
		f = float64(v.AsUint())
	case model.KindFloat:
		f = v.AsFloat()
		hasNum = !math.IsNaN(f)
	default:
		hasNum = false
	}
	good := sm.Quality.Code == model.Good
	return hasNum || !good, hasNum && good, f
}

// rollState is the writer's view of one tag in one day file.
//
// Closed blocks are not written one by one: a batch of 1,000 tags at 1 Hz
// closes a block for a third of them, and as each tag's rollups sit in
// their own leaf page, writing each at once would add a third as many
// dirty pages to every commit as the samples do. Closed summaries wait in
// memory until rollupFlush blocks have closed, then go in one row each
// with the mark; until then queries read those blocks raw (the mark has
// not moved), and a crash loses nothing (the rows are on disk; the next
// write reads them back).
type rollState struct {
	upto int64 // the mark on disk: rollups complete before it
	open int64 // the open block's start (≥ upto)
	tail int64 // rows up to this time may exist that no summary saw (a restart, a file from before rollups)
	// closed holds the summaries of the closed blocks in [upto, open)
	// with rows, when closedOK; else they are read back from disk.
	closed   []rollupRow
	closedOK bool
	acc      rollupRow // the open block, when valid
	valid    bool
	lastT    int64 // the newest row of the open block acc saw
}

// rollupFlush is how many closed blocks wait in memory before their
// rollups and the mark are written (4 minutes).
const rollupFlush = 8

// rollChange is what one tag's part of a batch does to the rollups.
type rollChange struct {
	id int64
	rs rollState
}

// rollupWork is the SQL a batch adds for the rollups: rows to upsert,
// blocks left empty to delete, marks to set.
type rollupWork struct {
	rows    []taggedRollup
	empties [][2]int64 // (tag, b)
	marks   [][2]int64 // (tag, upto)
	states  []rollChange
}

type taggedRollup struct {
	id int64
	r  rollupRow
}

// removal is a deleted row: tag id and time.
type removal struct{ id, t int64 }

// updateRollups brings the rollups of the tags in rows (sorted by tag
// and time, already inserted) and removed (already deleted) up to date
// inside tx. The in-memory states change only through commitRollups,
// after the transaction commits.
func (h *dayDB) updateRollups(ctx context.Context, tx *sql.Tx, pre map[int64]rollState, batch []model.Sample, rows []insRow, removed []removal) error {
	byTag := map[int64][]int64{}
	for _, r := range removed {
		byTag[r.id] = append(byTag[r.id], r.t)
	}
	var w rollupWork
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].id == rows[i].id {
			j++
		}
		if err := h.rollTag(ctx, tx, pre, rows[i].id, batch, rows[i:j], byTag[rows[i].id], &w); err != nil {
			return err
		}
		delete(byTag, rows[i].id)
		i = j
	}
	for id, ts := range byTag { // tags with removals only
		if err := h.rollTag(ctx, tx, pre, id, batch, nil, ts, &w); err != nil {
			return err
		}
	}
	if err := h.writeRollups(ctx, tx, &w); err != nil {
		return err
	}
	h.pending = w.states
	return nil
}

// commitRollups keeps the states of the batch just committed.
func (h *dayDB) commitRollups() {
	if h.roll == nil {
		h.roll = map[int64]rollState{}
	}
	for _, c := range h.pending {
		h.roll[c.id] = c.rs
	}
	h.pending = nil
}

// rollTag is one tag's part of updateRollups.
func (h *dayDB) rollTag(ctx context.Context, tx *sql.Tx, pre map[int64]rollState, id int64, batch []model.Sample, rows []insRow, removed []int64, w *rollupWork) error {
	rs, ok := pre[id]
	if !ok {
		var err error
		if rs, err = h.rollStateOf(ctx, tx, id); err != nil {
			return err
		}
	}
	var dirty []int64 // blocks before the mark to read back from disk
	for _, t := range removed {
		switch {
		case t < rs.upto:
			dirty = append(dirty, blockOf(t))
		case t < rs.open:
			rs.closedOK = false
		default:
			rs.valid = false
		}
	}
	moved := false
	flush := func() error {
		if rs.closedOK {
			for _, rr := range rs.closed {
				w.rows = append(w.rows, taggedRollup{id, rr})
			}
		} else if err := h.readRollups(ctx, tx, id, rs.upto, rs.open, func(rr rollupRow) { w.rows = append(w.rows, taggedRollup{id, rr}) }); err != nil {
			return err
		}
		rs.closed, rs.closedOK = nil, true // a new slice: the state before this batch may share the old one
		rs.upto, moved = rs.open, true
		return nil
	}
	for _, r := range rows {
		t := r.t
		switch {
		case t < rs.upto:
			dirty = append(dirty, blockOf(t))
			continue
		case t < rs.open:
			rs.closedOK = false
			continue
		}
		sel, cnt, f := aggOf(&batch[r.i])
		if b := blockOf(t); b >= rs.open+rollupBlock {
			// A later block: the open one closes, and the empty ones
			// between.
			if !rs.valid {
				rs.closedOK = false
			} else if rs.acc.any {
				rs.closed = append(rs.closed, rs.acc)
			}
			rs.open = b
			rs.acc, rs.valid, rs.lastT = rollupRow{b: b}, b > rs.tail, t
			if rs.open-rs.upto >= rollupFlush*rollupBlock {
				if err := flush(); err != nil {
					return err
				}
			}
		} else if rs.valid && t > rs.lastT {
			rs.lastT = t
		} else {
			rs.valid = false // not an append: settled from disk at the flush
			continue
		}
		if sel && rs.valid {
			rs.acc.add(t, cnt, f)
		}
	}
	if len(dirty) > 0 {
		slices.Sort(dirty)
		dirty = slices.Compact(dirty)
		for i := 0; i < len(dirty); { // one read per run of consecutive blocks
			j := i + 1
			for j < len(dirty) && dirty[j] == dirty[j-1]+rollupBlock {
				j++
			}
			got := map[int64]bool{}
			if err := h.readRollups(ctx, tx, id, dirty[i], dirty[j-1]+rollupBlock, func(rr rollupRow) {
				got[rr.b] = true
				w.rows = append(w.rows, taggedRollup{id, rr})
			}); err != nil {
				return err
			}
			for _, b := range dirty[i:j] {
				if !got[b] {
					w.empties = append(w.empties, [2]int64{id, b})
				}
			}
			i = j
		}
	}
	if moved {
		w.marks = append(w.marks, [2]int64{id, rs.upto})
	}
	w.states = append(w.states, rollChange{id, rs})
	return nil
}

// loadRollStates reads, before a batch's rows go in, the state of each
// of its tags that has none in memory (the first write since the file
// opened), so that tail is the newest row from before the batch.
func (h *dayDB) loadRollStates(ctx context.Context, tx *sql.Tx, rows []insRow) (map[int64]rollState, error) {
	var pre map[int64]rollState
	for i, r := range rows {
		if _, ok := h.roll[r.id]; ok || (i > 0 && rows[i-1].id == r.id) {
			continue
		}
		rs, err := h.rollStateOf(ctx, tx, r.id)
		if err != nil {
			return nil, err
		}
		if pre == nil {
			pre = map[int64]rollState{}
		}
		pre[r.id] = rs
	}
	return pre, nil
}

// rollStateOf is the tag's state: kept from the last batch, or (first
// write since the file opened) its mark on disk, nothing closed after
// it, and tail the tag's newest row, which no summary has seen (rows
// after the mark from before a restart; a file written before rollups
// existed, whose tags have no mark: upto is then the day's start). With
// no row at or after the mark (a new tag), the empty summary is exact.
func (h *dayDB) rollStateOf(ctx context.Context, tx *sql.Tx, id int64) (rollState, error) {
	if rs, ok := h.roll[id]; ok {
		return rs, nil
	}
	rs := rollState{tail: math.MinInt64, closedOK: true}
	err := tx.QueryRowContext(ctx, `SELECT upto FROM rollup_mark WHERE tag = ?`, id).Scan(&rs.upto)
	if errors.Is(err, sql.ErrNoRows) {
		rs.upto = h.day * dayNs
	} else if err != nil {
		return rs, fmt.Errorf("historian: rollup mark: %w", err)
	}
	rs.open = rs.upto
	var tail sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(t) FROM samples WHERE tag = ?`, id).Scan(&tail); err != nil {
		return rs, fmt.Errorf("historian: rollups: %w", err)
	}
	if tail.Valid {
		rs.tail = tail.Int64
	}
	rs.acc = rollupRow{b: rs.open}
	rs.valid, rs.lastT = rs.tail < rs.open, rs.tail
	return rs, nil
}

// readRollups computes the rollup rows of [from, to) (block aligned) of
// one tag from its rows on disk, calling fn for each block with rows.
func (h *dayDB) readRollups(ctx context.Context, q querier, id, from, to int64, fn func(rollupRow)) error {
	rows, err := q.QueryContext(ctx, `SELECT t, CASE WHEN kind IN `+numericKinds+` THEN v END, q FROM samples WHERE tag = ? AND t >= ? AND t < ? AND `+aggWhere+` ORDER BY t`, id, from, to)
	if err != nil {
		return fmt.Errorf("historian: rollups: %w", err)
	}
	defer rows.Close()
	var cur rollupRow
	for rows.Next() {
		var t int64
		var f sql.NullFloat64
		var qc int
		if err := rows.Scan(&t, &f, &qc); err != nil {
			return fmt.Errorf("historian: rollups: %w", err)
		}
		if b := blockOf(t); !cur.any || cur.b != b {
			if cur.any {
				fn(cur)
			}
			cur = rollupRow{b: b}
		}
		cur.add(t, counts(f.Valid, qc, false), f.Float64)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("historian: rollups: %w", err)
	}
	if cur.any {
		fn(cur)
	}
	return nil
}

// rollupChunk is the rows of one multi-row upsert (13 parameters each).
const rollupChunk = 64

// writeRollups runs the batch's rollup SQL: one multi-row upsert of
// rollup rows (in chunks), one of marks, and a delete per block a
// change left without rows (rare: compression's deletions).
func (h *dayDB) writeRollups(ctx context.Context, tx *sql.Tx, w *rollupWork) error {
	args := make([]any, 0, 13*rollupChunk)
	rows := w.rows
	for len(rows) > 0 {
		n := min(len(rows), rollupChunk)
		if n < rollupChunk {
			n = 1
		}
		args = args[:0]
		for _, x := range rows[:n] {
			r := x.r
			args = append(args, x.id, r.b, r.n, nullNaN(r.min), nullNaN(r.max), nullNaN(r.sum), nullNaN(r.first), nullNaN(r.last), r.t0, r.tl, r.held, nullNaN(r.tw), r.span)
		}
		if err := h.exec(ctx, tx, "INSERT OR REPLACE INTO rollups (tag, b, n, mn, mx, sum, first, last, t0, tl, held, tw, span) VALUES ", "(?,?,?,?,?,?,?,?,?,?,?,?,?)", n, args); err != nil {
			return fmt.Errorf("historian: rollups: %w", err)
		}
		rows = rows[n:]
	}
	marks := w.marks
	for len(marks) > 0 {
		n := min(len(marks), rollupChunk)
		if n < rollupChunk {
			n = 1
		}
		args = args[:0]
		for _, m := range marks[:n] {
			args = append(args, m[0], m[1])
		}
		if err := h.exec(ctx, tx, "INSERT OR REPLACE INTO rollup_mark (tag, upto) VALUES ", "(?,?)", n, args); err != nil {
			return fmt.Errorf("historian: rollup marks: %w", err)
		}
		marks = marks[n:]
	}
	for _, e := range w.empties {
		if _, err := tx.ExecContext(ctx, `DELETE FROM rollups WHERE tag = ? AND b = ?`, e[0], e[1]); err != nil {
			return fmt.Errorf("historian: rollups: %w", err)
		}
	}
	return nil
}

// exec runs a multi-row statement of n rows through a statement prepared
// once per day file.
func (h *dayDB) exec(ctx context.Context, tx *sql.Tx, head, tuple string, n int, args []any) error {
	q := head + tuple + strings.Repeat(","+tuple, n-1)
	h.smu.Lock()
	st, ok := h.stmts[q]
	if !ok {
		var err error
		if st, err = h.db.PrepareContext(ctx, q); err != nil {
			h.smu.Unlock()
			return err
		}
		if h.stmts == nil {
			h.stmts = map[string]*sql.Stmt{}
		}
		h.stmts[q] = st
	}
	h.smu.Unlock()
	txs := tx.StmtContext(ctx, st)
	defer txs.Close()
	_, err := txs.ExecContext(ctx, args...)
	return err
}

// nullNaN stores NaN (from infinities that cancel) as NULL, SQLite
// having no NaN; it reads back as NaN.
func nullNaN(f float64) any {
	if math.IsNaN(f) {
		return nil
	}
	return f
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanDayRollups feeds one day of path in [from, to) to a (default
// semantics, interval a multiple of rollupBlock): raw rows up to the
// first whole block, rollups for the whole blocks before the mark, raw
// rows for the rest. One read transaction, so the mark, the rollups and
// the rows are of the same moment even beside the writer.
func (s *Store) scanDayRollups(ctx context.Context, day int64, path string, from, to int64, a *aggregator) error {
	h, err := s.open(ctx, day, false)
	if err != nil || h == nil {
		return err
	}
	if h.noRollups {
		return s.scanNumeric(ctx, day, path, from, to, false, a.add, a.gap)
	}
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("historian: query: %w", err)
	}
	defer tx.Rollback()
	var id, upto int64
	err = tx.QueryRowContext(ctx, `SELECT g.id, coalesce(m.upto, ?) FROM tags g LEFT JOIN rollup_mark m ON m.tag = g.id WHERE g.path = ?`, int64(math.MinInt64), path).Scan(&id, &upto)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("historian: query: %w", err)
	}
	lo, hi := max(from, day*dayNs), min(to, (day+1)*dayNs)
	fb := blockOf(lo + rollupBlock - 1) // first whole block
	eb := min(blockOf(hi), upto)        // end of the whole blocks with rollups
	raw := func(from, to int64) error {
		if from >= to {
			return nil
		}
		return scanNumericIn(ctx, tx, "?", id, from, to, false, a.add, a.gap)
	}
	if eb <= fb {
		return raw(lo, hi)
	}
	if err := raw(lo, fb); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT b, n, mn, mx, sum, first, last, t0, tl, held, tw, span FROM rollups WHERE tag = ? AND b >= ? AND b < ? ORDER BY b`, id, fb, eb)
	if err != nil {
		return fmt.Errorf("historian: query: %w", err)
	}
	for rows.Next() {
		var r rollupRow
		var f [6]sql.NullFloat64
		if err := rows.Scan(&r.b, &r.n, &f[0], &f[1], &f[2], &f[3], &f[4], &r.t0, &r.tl, &r.held, &f[5], &r.span); err != nil {
			rows.Close()
			return fmt.Errorf("historian: scan: %w", err)
		}
		r.min, r.max, r.sum, r.first, r.last, r.tw = nanNull(f[0]), nanNull(f[1]), nanNull(f[2]), nanNull(f[3]), nanNull(f[4]), nanNull(f[5])
		a.addBlock(r)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("historian: query: %w", err)
	}
	return raw(eb, hi)
}

func nanNull(f sql.NullFloat64) float64 {
	if !f.Valid {
		return math.NaN()
	}
	return f.Float64
}

// addBlock folds in a block's rollup row with the result feeding its
// rows one by one (add, gap) would give. The block lies inside one
// bucket and inside [from, to). The value holding before the block
// carries in up to t0; the block adds its own integral and covered time;
// after it, its last value holds if the last row counted.
func (a *aggregator) addBlock(r rollupRow) {
	if r.n == 0 {
		a.gap(r.t0, 0) // only gaps: the first ends the hold, the rest change nothing
		return
	}
	bs := a.start(r.b)
	if a.cur != nil && a.cur.Start != bs {
		a.close()
	}
	if a.cur == nil {
		a.cur = &Bucket{Start: bs, Min: r.min, Max: r.max, First: r.first}
		a.sum, a.twSum, a.twSpan, a.tLast = 0, 0, 0, max(bs, a.from)
		if a.endHeld && a.start(a.endT) == bs {
			a.twSum, a.twSpan = a.endV*float64(a.endT-a.tLast), a.endT-a.tLast
		}
		a.endHeld = false
	}
	a.integrate(r.t0)
	b := a.cur
	b.Count += int(r.n)
	a.sum += r.sum
	b.Min, b.Max, b.Last = min(b.Min, r.min), max(b.Max, r.max), r.last
	a.twSum += r.tw
	a.twSpan += r.span
	a.tLast = r.tl
	a.prevT, a.prevV, a.havePrev = r.tl, r.last, r.held
}
