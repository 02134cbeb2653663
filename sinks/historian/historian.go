package historian

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// maxAhead is how far ahead of the clock a sample may be. A later one
// (a source with a wrong clock) is refused: its day would be the newest,
// which max_bytes never deletes, so it would push real history out.
const maxAhead = 24 * time.Hour

// ErrFull, wrapped by Write, says the historian refuses samples for lack
// of room: the newest day alone is over max_bytes, or the file system has
// less than min_free_bytes free. It is retryable: the buffer in front
// keeps the batch and offers it again; Write accepts again once there is
// room (max_bytes raised, space freed).
var ErrFull = errors.New("historian full")

// Sink writes every sample into the local historian. See the package
// documentation for the layout and the disk policy.
type Sink struct {
	cfg       Config // defaults applied
	retention time.Duration
	log       *slog.Logger
	now       func() time.Time // the clock of the retention policy; tests set it
	// free is the free space of dir's file system; tests set it.
	free func(dir string) (int64, error)
	// probe checks that dir is writable (writeProbe); tests set it, as
	// the suite may run as root, whom a file mode does not stop.
	probe func(dir string) error

	mu     sync.Mutex // guards store and closed
	store  *Store
	closed bool

	wmu  sync.Mutex  // one Write at a time: the compressor's state
	comp *compressor // nil: every sample is stored

	// Figures for Status, updated after each Write.
	stored, compressed, refusedFull atomic.Uint64
	// wire is wire_bytes: the estimated bytes of the rows stored (rowBytes).
	wire        atomic.Uint64
	bytes, days atomic.Int64
	full        atomic.Pointer[string] // why Write refuses, nil when it does not
}

var (
	_ pipeline.Sink           = (*Sink)(nil)
	_ pipeline.StatusReporter = (*Sink)(nil)
)

// New builds a sink from cfg. It validates, applies defaults and does no
// I/O.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("historian sink: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var ret time.Duration
	if cfg.Retention != "" {
		ret, _ = ParseRetention(cfg.Retention) // validated above
	}
	s := &Sink{cfg: cfg, retention: ret, log: log, now: time.Now, free: freeSpace, probe: writeProbe}
	if cfg.Compression.on() {
		c, err := newCompressor(cfg.Compression)
		if err != nil {
			return nil, fmt.Errorf("historian sink: compression: %w", err)
		}
		s.comp = c
	}
	return s, nil
}

// writeProbe creates and removes a file in dir.
func writeProbe(dir string) error {
	f, err := os.CreateTemp(dir, ".weir-write-probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	err = f.Close()
	return errors.Join(err, os.Remove(name))
}

func freeSpace(dir string) (int64, error) {
	u, err := vfs.Default.GetDiskUsage(dir)
	if err != nil {
		return 0, err
	}
	return int64(u.AvailBytes), nil
}

// Connect opens the directory (creating it), checks that it is writable
// and applies the disk policy once. It returns nil at once when already open.
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("historian %s: connect: %w", s.cfg.Dir, pipeline.ErrClosed)
	}
	if s.store != nil {
		return nil
	}
	st, err := OpenStore(s.cfg.Dir, s.log)
	if err != nil {
		return err
	}
	// A directory the process cannot write opens fine and lists its days;
	// only the first write would fail, as SQLite's "unable to open
	// database file (14)". Connect fails instead, naming the directory and
	// the cause, so the sink shows as down in the status and /readyz.
	if err := s.probe(s.cfg.Dir); err != nil {
		st.Close()
		return fmt.Errorf("historian %s: directory not writable by this process (uid %d): %w", s.cfg.Dir, os.Getuid(), err)
	}
	st.walPages = walPagesFor(s.cfg.MaxBytes)
	if err := s.enforce(st); err != nil {
		st.Close()
		return err
	}
	s.store = st
	return nil
}

// Store is the sink's store for queries; nil before Connect and after
// Close.
func (s *Sink) Store() *Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store
}

// Write stores the batch: one transaction per day file it touches (one,
// unless the batch spans midnight UTC). Samples with an empty or non-UTF-8
// path are refused in a *pipeline.RejectedError after the rest is stored.
// Samples older than the retention are dropped (logged): storing them
// would recreate a deleted day. Samples more than a day ahead of the clock
// are refused (CauseRefused). With compression on, only the samples it
// keeps are stored; the others are acknowledged all the same. While there
// is no room (see ErrFull) the whole batch is refused, retryably.
func (s *Sink) Write(ctx context.Context, batch []model.Sample) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	st, closed := s.store, s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("historian %s: write: %w", s.cfg.Dir, pipeline.ErrClosed)
	}
	if st == nil {
		return fmt.Errorf("historian %s: write: %w", s.cfg.Dir, pipeline.ErrDisconnected)
	}
	if err := s.room(st); err != nil {
		s.refusedFull.Add(1)
		return err
	}
	var rejected []pipeline.Rejection
	var oldest int64 = -1 << 63
	if s.retention > 0 {
		oldest = dayOf(s.now().Add(-s.retention).UnixNano())
	}
	horizon := s.now().Add(maxAhead).UnixNano()
	valid := make([]model.Sample, 0, len(batch))
	stale := 0
	for i, sm := range batch {
		if !validPath(sm.Path) {
			rejected = append(rejected, pipeline.Rejection{Index: i, Cause: pipeline.CauseInvalidName, Err: errors.New("tag path is empty or not UTF-8")})
			continue
		}
		if sampleTime(sm) > horizon {
			rejected = append(rejected, pipeline.Rejection{Index: i, Cause: pipeline.CauseRefused, Err: fmt.Errorf("time %s is more than %s ahead of the clock", model.Time(sampleTime(sm)).Format(time.RFC3339), maxAhead)})
			continue
		}
		if dayOf(sampleTime(sm)) < oldest {
			stale++
			continue
		}
		valid = append(valid, sm)
	}
	if stale > 0 {
		s.log.Warn("historian: samples older than the retention dropped", "samples", stale, "retention", s.cfg.Retention)
	}
	out := compOut{store: valid, stored: uint64(len(valid))}
	if s.comp != nil {
		out = s.comp.process(valid)
	}
	if err := s.writeDays(ctx, st, out); err != nil {
		if s.comp != nil {
			s.comp.rollback()
		}
		if errors.Is(err, errClosed) {
			return fmt.Errorf("historian %s: %w", s.cfg.Dir, pipeline.ErrClosed)
		}
		return err
	}
	if s.comp != nil {
		s.comp.commit()
	}
	s.stored.Add(out.stored)
	s.compressed.Add(out.dropped)
	var wire uint64
	for i := range out.store {
		wire += uint64(rowBytes(&out.store[i]))
	}
	s.wire.Add(wire)
	if len(out.store) > 0 {
		if err := s.enforce(st); err != nil {
			s.log.Error("historian: disk policy", "err", err)
		}
	}
	if len(rejected) > 0 {
		return &pipeline.RejectedError{Rejected: rejected}
	}
	return nil
}

// writeDays writes the rows by day, newest day first: a provisional held
// point is only ever replaced by a newer sample, so its replacement is on
// disk before it is deleted, even across midnight.
func (s *Sink) writeDays(ctx context.Context, st *Store, out compOut) error {
	ins := map[int64][]model.Sample{}
	del := map[int64][]model.Sample{}
	var order []int64
	add := func(m map[int64][]model.Sample, sm model.Sample) {
		d := dayOf(sampleTime(sm))
		if _, ok := ins[d]; !ok {
			if _, ok := del[d]; !ok {
				order = append(order, d)
			}
		}
		m[d] = append(m[d], sm)
	}
	for _, sm := range out.store {
		add(ins, sm)
	}
	for _, sm := range out.remove {
		add(del, sm)
	}
	slices.Sort(order)
	slices.Reverse(order)
	for _, d := range order {
		if err := st.write(ctx, d, ins[d], del[d]); err != nil {
			return err
		}
	}
	return nil
}

// enforce applies the retention and max_bytes and notes whether the
// newest day alone is over max_bytes.
func (s *Sink) enforce(st *Store) error {
	total, err := st.Enforce(s.now(), s.retention, s.cfg.MaxBytes)
	if err != nil {
		return err
	}
	s.bytes.Store(total)
	if days, err := st.Days(); err == nil {
		s.days.Store(int64(len(days)))
	}
	if total > s.cfg.MaxBytes {
		s.setFull(fmt.Sprintf("the newest day alone is %d bytes after a WAL checkpoint, over max_bytes %d", total, s.cfg.MaxBytes))
	} else {
		s.setFull("")
	}
	return nil
}

// room says whether Write may write: nil, or ErrFull with the reason.
// Over max_bytes it looks again first (another process, or an operator,
// may have freed files).
func (s *Sink) room(st *Store) error {
	if s.full.Load() != nil {
		if err := s.enforce(st); err != nil {
			return err
		}
	}
	if why := s.full.Load(); why != nil {
		return fmt.Errorf("historian %s: %w: %s; the buffer keeps the samples until there is room (%s)", s.cfg.Dir, ErrFull, *why, s.advice())
	}
	if s.cfg.MinFreeBytes > 0 {
		free, err := s.free(s.cfg.Dir)
		if err == nil && free < s.cfg.MinFreeBytes {
			why := fmt.Sprintf("%d bytes free on the file system, under min_free_bytes %d", free, s.cfg.MinFreeBytes)
			s.setFull(why)
			return fmt.Errorf("historian %s: %w: %s; the buffer keeps the samples until there is room", s.cfg.Dir, ErrFull, why)
		}
	}
	return nil
}

// advice is what an operator can do about max_bytes: compression is
// only suggested when it is off (on, it already stores what it can).
func (s *Sink) advice() string {
	if s.comp != nil {
		return "raise max_bytes"
	}
	return "raise max_bytes, or turn on compression to store fewer samples"
}

// setFull records why Write refuses ("" clears it) and logs each change.
func (s *Sink) setFull(why string) {
	old := s.full.Load()
	switch {
	case why == "" && old != nil:
		s.full.Store(nil)
		s.log.Info("historian: room again; writes accepted")
	case why != "" && old == nil:
		s.full.Store(&why)
		s.log.Error("historian: full; writes refused (retryable, the buffer keeps the samples)", "reason", why)
	case why != "":
		s.full.Store(&why)
	}
}

// Status reports the historian's figures (metric catalogue: api/help.go).
func (s *Sink) Status() pipeline.Status {
	st := pipeline.Status{
		Counters: map[string]uint64{
			"historian_samples_stored":     s.stored.Load(),
			"historian_samples_compressed": s.compressed.Load(),
			"historian_writes_refused":     s.refusedFull.Load(),
			"wire_bytes":                   s.wire.Load(),
		},
		Gauges: map[string]float64{
			"historian_disk_bytes": float64(s.bytes.Load()),
			"historian_day_files":  float64(s.days.Load()),
			"historian_full":       0,
		},
	}
	if why := s.full.Load(); why != nil {
		st.Gauges["historian_full"] = 1
		st.LastError = "full: " + *why
	}
	return st
}

// Close closes the day files. Writes after it fail. Compression has
// nothing left to write: each Write already stored its held points.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.store == nil {
		return nil
	}
	err := s.store.Close()
	s.store = nil
	return err
}
