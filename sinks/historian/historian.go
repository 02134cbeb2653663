package historian

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// maxAhead is how far ahead of the clock a sample may be. A later one
// (a source with a wrong clock) is refused: its day would be the newest,
// which max_bytes never deletes, so it would push real history out.
const maxAhead = 24 * time.Hour

// Sink writes every sample into the local historian. See the package
// documentation for the layout and the disk policy.
type Sink struct {
	cfg       Config // defaults applied
	retention time.Duration
	log       *slog.Logger
	now       func() time.Time // the clock of the retention policy; tests set it

	mu     sync.Mutex // guards store and closed
	store  *Store
	closed bool
}

var _ pipeline.Sink = (*Sink)(nil)

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
	return &Sink{cfg: cfg, retention: ret, log: log, now: time.Now}, nil
}

// Connect opens the directory (creating it) and applies the disk policy
// once. It returns nil at once when already open.
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
	if err := st.Enforce(s.now(), s.retention, s.cfg.MaxBytes); err != nil {
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
// are refused (CauseRefused).
func (s *Sink) Write(ctx context.Context, batch []model.Sample) error {
	s.mu.Lock()
	st, closed := s.store, s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("historian %s: write: %w", s.cfg.Dir, pipeline.ErrClosed)
	}
	if st == nil {
		return fmt.Errorf("historian %s: write: %w", s.cfg.Dir, pipeline.ErrDisconnected)
	}
	var rejected []pipeline.Rejection
	var oldest int64 = -1 << 63
	if s.retention > 0 {
		oldest = dayOf(s.now().Add(-s.retention).UnixNano())
	}
	horizon := s.now().Add(maxAhead).UnixNano()
	byDay := map[int64][]model.Sample{}
	var order []int64
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
		d := dayOf(sampleTime(sm))
		if d < oldest {
			stale++
			continue
		}
		if _, ok := byDay[d]; !ok {
			order = append(order, d)
		}
		byDay[d] = append(byDay[d], sm)
	}
	if stale > 0 {
		s.log.Warn("historian: samples older than the retention dropped", "samples", stale, "retention", s.cfg.Retention)
	}
	for _, d := range order {
		if err := st.write(ctx, d, byDay[d]); err != nil {
			if errors.Is(err, errClosed) {
				return fmt.Errorf("historian %s: %w", s.cfg.Dir, pipeline.ErrClosed)
			}
			return err
		}
	}
	if len(order) > 0 {
		if err := st.Enforce(s.now(), s.retention, s.cfg.MaxBytes); err != nil {
			s.log.Error("historian: disk policy", "error", err)
		}
	}
	if len(rejected) > 0 {
		return &pipeline.RejectedError{Rejected: rejected}
	}
	return nil
}

// Close closes the day files. Writes after it fail.
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
