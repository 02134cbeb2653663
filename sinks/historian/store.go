package historian

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/weir-edge/weir/model"
)

const (
	// defaultWALPages is SQLite's default wal_autocheckpoint.
	defaultWALPages = 1000
	// minWALPages (64 KiB) is the smallest checkpoint interval: below it
	// nearly every commit would copy pages back into the day file.
	minWALPages = 16
	// maxWALPages (32 MiB) is the checkpoint interval when max_bytes
	// allows it (walPagesFor).
	maxWALPages = 8192
	dayNs       = int64(24 * time.Hour)
	// maxOpenDays bounds the open day files; the least recently used one
	// is closed past it (queries over long ranges reopen them).
	maxOpenDays = 8
	fileSuffix  = ".db"
	dayLayout   = "2006-01-02"
)

const schema = `
CREATE TABLE IF NOT EXISTS tags (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS samples (
	tag    INTEGER NOT NULL,
	t      INTEGER NOT NULL,
	kind   INTEGER NOT NULL,
	v      ANY,
	q      INTEGER NOT NULL,
	reason TEXT,
	seq    INTEGER NOT NULL,
	PRIMARY KEY (tag, t)
) WITHOUT ROWID;` + rollupSchema

// Store is the historian's files: one SQLite database per UTC day under
// dir. It is safe for concurrent use: one writer (the sink) and any number
// of readers (queries); SQLite's WAL lets readers run beside the writer.
type Store struct {
	dir string
	log *slog.Logger

	// walPages is the WAL size (pages of 4 KiB) at which SQLite copies it
	// back into the day file (wal_autocheckpoint); set before the first
	// day opens. Rarer checkpoints mean fewer writes of the same pages (a
	// batch over many tags dirties a leaf page per tag), at the price of
	// a WAL that large on disk, within max_bytes.
	walPages int

	mu     sync.Mutex
	days   map[int64]*dayDB // open day files by day number
	closed bool
	tick   uint64 // use counter for the LRU
}

type dayDB struct {
	day int64
	db  *sql.DB
	// noRollups: a file opened for reading only that lacks the rollup
	// tables (written before them); aggregates read its samples.
	noRollups bool
	tags      map[string]int64 // path → id, filled as used
	used      uint64
	ins       [2]*sql.Stmt // prepared INSERTs of 1 and insertChunk rows (the writer only)

	// The writer's rollup state (rollup.go): one per tag written since
	// the file opened, dropped with the handle; statements it prepared;
	// the states of the batch in flight, kept once it commits.
	roll    map[int64]rollState
	pending []rollChange
	smu     sync.Mutex // guards stmts: close may run from a query evicting the day
	stmts   map[string]*sql.Stmt
}

// OpenStore opens (creating) the directory. Day files open on demand.
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("historian: %w", err)
	}
	return &Store{dir: dir, log: log, days: map[int64]*dayDB{}, walPages: defaultWALPages}, nil
}

// walPagesFor is the checkpoint interval for a bound: a sixteenth of it,
// from minWALPages up to maxWALPages. It is derived from max_bytes, never
// a fixed floor: the WAL counts against max_bytes, so a floor above the
// bound (SQLite's default of 1,000 pages is 4 MiB, over the 1 MiB minimum
// max_bytes) would report the historian full with little data in it.
func walPagesFor(maxBytes int64) int {
	return int(min(max(maxBytes/16/4096, minWALPages), maxWALPages))
}

// Dir is the directory of the day files.
func (s *Store) Dir() string { return s.dir }

// Close closes every open day file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for d, h := range s.days {
		errs = append(errs, h.close())
		delete(s.days, d)
	}
	return errors.Join(errs...)
}

// dayOf is the UTC day number of a time in ns since the epoch.
func dayOf(ns int64) int64 {
	d := ns / dayNs
	if ns < 0 && ns%dayNs != 0 {
		d--
	}
	return d
}

func (s *Store) path(day int64) string {
	return filepath.Join(s.dir, time.Unix(day*86400, 0).UTC().Format(dayLayout)+fileSuffix)
}

// Days lists the day numbers with a file, oldest first.
func (s *Store) Days() ([]int64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("historian: %w", err)
	}
	var out []int64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), fileSuffix)
		if !ok || e.IsDir() {
			continue
		}
		t, err := time.Parse(dayLayout, name)
		if err != nil {
			continue
		}
		out = append(out, t.Unix()/86400)
	}
	slices.Sort(out)
	return out, nil
}

// open returns the day's handle; create says whether a missing file may
// be created (writes) or is reported as (nil, nil) (queries).
func (s *Store) open(ctx context.Context, day int64, create bool) (*dayDB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	s.tick++
	if h, ok := s.days[day]; ok {
		h.used = s.tick
		return h, nil
	}
	p := s.path(day)
	if !create {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	// synchronous(FULL): a Write acknowledged to the buffer must survive a
	// power cut, since the buffer then forgets the batch.
	dsn := "file:" + p + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=wal_autocheckpoint(" + strconv.Itoa(s.walPages) + ")"
	if create {
		// The day being written: its working set is a leaf page per tag
		// (1,000 tags: 4 MiB) plus the inner pages. Days opened for
		// queries keep SQLite's 2 MiB, so eight open days stay small.
		dsn += "&_pragma=cache_size(-16384)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("historian: open %s: %w", p, err)
	}
	noRollups := false
	if _, err := db.ExecContext(ctx, schema); err != nil {
		// A day file from before rollups that this process may only read
		// (weir history as another user, a read-only copy) cannot get
		// the rollup tables; its queries read the samples instead.
		if create || !hasSamples(ctx, db) {
			db.Close()
			return nil, fmt.Errorf("historian: open %s%s: %w", p, openProblem(p, create), err)
		}
		noRollups = true
	}
	if len(s.days) >= maxOpenDays {
		var lru *dayDB
		for _, h := range s.days {
			if lru == nil || h.used < lru.used {
				lru = h
			}
		}
		lru.close()
		delete(s.days, lru.day)
	}
	h := &dayDB{day: day, db: db, tags: map[string]int64{}, used: s.tick, noRollups: noRollups}
	s.days[day] = h
	return h, nil
}

var errClosed = errors.New("historian store closed")

// hasSamples reports whether db has the samples table and the rollup
// tables are what is missing.
func hasSamples(ctx context.Context, db *sql.DB) bool {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('samples', 'rollups')`).Scan(&n)
	return err == nil && n == 1
}

// openProblem says, when it can tell, why SQLite could not open a day
// file: its own message ("unable to open database file (14)") names
// neither the file nor the cause.
func openProblem(p string, create bool) string {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return " (a directory is in the way of the day file)"
	}
	if !create {
		return ""
	}
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, ".weir-write-probe-*")
	if err != nil {
		return fmt.Sprintf(" (directory %s not writable by uid %d: %v)", dir, os.Getuid(), errors.Unwrap(err))
	}
	f.Close()
	os.Remove(f.Name())
	if fw, err := os.OpenFile(p, os.O_WRONLY, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf(" (not writable by uid %d: %v)", os.Getuid(), errors.Unwrap(err))
	} else if err == nil {
		fw.Close()
	}
	return ""
}

// write stores samples (already valid) of one day in one transaction. A
// replayed sample (same tag and time) replaces the stored one, so a batch
// the buffer sends twice after a crash is stored once.
//
// remove are rows to delete in the same transaction, after the inserts:
// provisional held points of the compression (compress.go) that a newer
// sample replaced.
func (s *Store) write(ctx context.Context, day int64, batch, remove []model.Sample) error {
	h, err := s.open(ctx, day, true)
	if err != nil {
		return err
	}
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("historian: begin: %w", err)
	}
	defer tx.Rollback()
	newTags := map[string]int64{}
	rows := make([]insRow, 0, len(batch))
	for i, sm := range batch {
		id, ok := h.tags[sm.Path]
		if !ok {
			if id, ok = newTags[sm.Path]; !ok {
				if err := tx.QueryRowContext(ctx, `INSERT INTO tags (path) VALUES (?) ON CONFLICT (path) DO UPDATE SET path = excluded.path RETURNING id`, sm.Path).Scan(&id); err != nil {
					return fmt.Errorf("historian: tag %q: %w", sm.Path, err)
				}
				newTags[sm.Path] = id
			}
		}
		rows = append(rows, insRow{id: id, t: sampleTime(sm), i: i})
	}
	// In key order, each leaf page of the table is visited once per batch
	// instead of once per sample (with many tags the difference is most of
	// the cost); stable, so a later duplicate (tag, t) still wins.
	slices.SortStableFunc(rows, func(a, b insRow) int {
		if a.id != b.id {
			return cmp.Compare(a.id, b.id)
		}
		return cmp.Compare(a.t, b.t)
	})
	// Rows go insertChunk at a time in one statement: the per-statement
	// cost of database/sql and the VDBE is then paid once per chunk.
	sorted := rows
	pre, err := h.loadRollStates(ctx, tx, rows)
	if err != nil {
		return err
	}
	args := make([]any, 0, 7*insertChunk)
	var stmts [2]*sql.Stmt // bound to tx, closed with it
	for len(rows) > 0 {
		n := insertChunk
		if len(rows) < n {
			n = 1
		}
		k := min(n-1, 1)
		if stmts[k] == nil {
			st, err := h.insertStmt(ctx, n)
			if err != nil {
				return err
			}
			stmts[k] = tx.StmtContext(ctx, st)
		}
		stmt := stmts[k]
		args = args[:0]
		for _, r := range rows[:n] {
			sm := &batch[r.i]
			var reason any
			if sm.Quality.Reason != "" {
				reason = sm.Quality.Reason
			}
			args = append(args, r.id, r.t, int(sm.Value.Kind()), encodeValue(sm.Value), int(sm.Quality.Code), reason, int64(sm.Seq))
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("historian: insert: %w", err)
		}
		rows = rows[n:]
	}
	var removed []removal
	if len(remove) > 0 {
		del, err := tx.PrepareContext(ctx, `DELETE FROM samples WHERE tag = ? AND t = ?`)
		if err != nil {
			return fmt.Errorf("historian: prepare: %w", err)
		}
		defer del.Close()
		for _, sm := range remove {
			id, ok := h.tags[sm.Path]
			if !ok {
				if id, ok = newTags[sm.Path]; !ok {
					err := tx.QueryRowContext(ctx, `SELECT id FROM tags WHERE path = ?`, sm.Path).Scan(&id)
					if errors.Is(err, sql.ErrNoRows) {
						continue // never stored here: nothing to delete
					}
					if err != nil {
						return fmt.Errorf("historian: tag %q: %w", sm.Path, err)
					}
				}
			}
			if _, err := del.ExecContext(ctx, id, sampleTime(sm)); err != nil {
				return fmt.Errorf("historian: delete held point: %w", err)
			}
			removed = append(removed, removal{id, sampleTime(sm)})
		}
	}
	// The rollups change in the same transaction, so that they and the
	// rows agree whatever happens to the process.
	if err := h.updateRollups(ctx, tx, pre, batch, sorted, removed); err != nil {
		h.roll = nil // read back from disk by the next write
		return err
	}
	if err := tx.Commit(); err != nil {
		h.roll = nil
		return fmt.Errorf("historian: commit: %w", err)
	}
	h.commitRollups()
	s.mu.Lock()
	for p, id := range newTags {
		h.tags[p] = id
	}
	s.mu.Unlock()
	return nil
}

// insertChunk is the rows of one multi-row INSERT (7 parameters each,
// far below SQLite's limit of 32766).
const insertChunk = 64

// insRow is one row to insert: its tag id, time and index in the batch.
type insRow struct {
	id, t int64
	i     int
}

// insertStmt is the prepared INSERT of n rows (1 or insertChunk).
func (h *dayDB) insertStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	k := min(n-1, 1)
	if h.ins[k] == nil {
		q := "INSERT OR REPLACE INTO samples (tag, t, kind, v, q, reason, seq) VALUES (?,?,?,?,?,?,?)" + strings.Repeat(",(?,?,?,?,?,?,?)", n-1)
		st, err := h.db.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("historian: prepare: %w", err)
		}
		h.ins[k] = st
	}
	return h.ins[k], nil
}

// close closes the day's statements and database.
func (h *dayDB) close() error {
	for _, st := range h.ins {
		if st != nil {
			st.Close()
		}
	}
	h.smu.Lock()
	for _, st := range h.stmts {
		st.Close()
	}
	h.smu.Unlock()
	return h.db.Close()
}

// sampleTime is the time a sample is filed under: when the source took
// it, or when the edge saw it if the source gave none.
func sampleTime(sm model.Sample) int64 {
	if sm.SourceTime != 0 {
		return sm.SourceTime
	}
	return sm.EdgeTime
}

// Size is the bytes of every day file (with its WAL and shared memory).
func (s *Store) Size() (int64, error) {
	days, err := s.Days()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, d := range days {
		n += s.daySize(d)
	}
	return n, nil
}

func (s *Store) daySize(day int64) int64 {
	var n int64
	p := s.path(day)
	for _, f := range []string{p, p + "-wal", p + "-shm"} {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// checkpoint copies the WAL of every open day file back into it and
// truncates the WAL to zero bytes (wal_checkpoint(TRUNCATE)), so the size
// on disk is the data's. Enforce calls it before declaring the store over
// max_bytes: an automatic checkpoint runs only after a commit, so a store
// that refuses writes would otherwise never shrink its WAL. A checkpoint
// that a reader holds back is not an error; the size is then measured as
// it is.
func (s *Store) checkpoint(ctx context.Context) {
	s.mu.Lock()
	hs := make([]*dayDB, 0, len(s.days))
	for _, h := range s.days {
		hs = append(hs, h)
	}
	s.mu.Unlock()
	for _, h := range hs {
		if _, err := h.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			s.log.Debug("historian: checkpoint", "day", s.dayName(h.day), "err", err)
		}
	}
}

// DropDay closes and deletes one day file.
func (s *Store) DropDay(day int64) error {
	s.mu.Lock()
	if h, ok := s.days[day]; ok {
		h.close()
		delete(s.days, day)
	}
	s.mu.Unlock()
	p := s.path(day)
	var errs []error
	for _, f := range []string{p + "-wal", p + "-shm", p} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Enforce applies the disk policy: days wholly older than now-retention
// go (retention 0 keeps them); then, while the files exceed maxBytes
// (0 = no bound), the oldest day goes, but never the newest one. Every
// deletion is logged at warn level with its reason. It returns the bytes
// left, which exceed maxBytes when the newest day alone does.
func (s *Store) Enforce(now time.Time, retention time.Duration, maxBytes int64) (int64, error) {
	days, err := s.Days()
	if err != nil {
		return 0, err
	}
	if retention > 0 {
		cutoff := dayOf(now.Add(-retention).UnixNano()) // days before this one are wholly older
		for len(days) > 0 && days[0] < cutoff {
			s.log.Warn("historian: day deleted", "day", s.dayName(days[0]), "reason", "retention", "retention", retention)
			if err := s.DropDay(days[0]); err != nil {
				return 0, fmt.Errorf("historian: retention: %w", err)
			}
			days = days[1:]
		}
	}
	sizes := make([]int64, len(days))
	var total int64
	for i, d := range days {
		sizes[i] = s.daySize(d)
		total += sizes[i]
	}
	if maxBytes > 0 && total > maxBytes {
		// Part of the total may be WAL: fold it into the day files first.
		s.checkpoint(context.Background())
		total = 0
		for i, d := range days {
			sizes[i] = s.daySize(d)
			total += sizes[i]
		}
	}
	for i := 0; maxBytes > 0 && total > maxBytes && i < len(days)-1; i++ {
		s.log.Warn("historian: day deleted", "day", s.dayName(days[i]), "reason", "max_bytes", "bytes", total, "max_bytes", maxBytes)
		if err := s.DropDay(days[i]); err != nil {
			return total, fmt.Errorf("historian: max_bytes: %w", err)
		}
		total -= sizes[i]
	}
	return total, nil
}

func (s *Store) dayName(day int64) string {
	return time.Unix(day*86400, 0).UTC().Format(dayLayout)
}
