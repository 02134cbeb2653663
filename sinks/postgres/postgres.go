package postgres

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/weir-edge/weir/internal/wirecount"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Sink writes samples into a PostgreSQL (or TimescaleDB) table, one
// transaction per batch. See the package documentation for the table.
type Sink struct {
	cfg   Config // defaults applied
	sql   statements
	where string // "postgres <schema.table>", for errors
	log   *slog.Logger

	// mu serializes Connect, Write and Close: a pgx.Conn is one session
	// and must not be used concurrently. Status never takes it.
	mu     sync.Mutex
	conn   *pgx.Conn
	closed bool
	rows   rowSource // reused between Writes

	stMu    sync.Mutex
	state   string
	lastErr string

	samples      atomic.Uint64 // confirmed (committed)
	inserted     atomic.Uint64 // rows actually added
	duplicates   atomic.Uint64 // rows already present (replays)
	transactions atomic.Uint64
	writeErrors  atomic.Uint64
	connects     atomic.Uint64
	disconnects  atomic.Uint64
	// wire counts the bytes written to the server over every session.
	wire wirecount.Counter
}

var (
	_ pipeline.Sink           = (*Sink)(nil)
	_ pipeline.StatusReporter = (*Sink)(nil)
)

// New builds a sink from cfg. It validates, applies defaults and does no
// network or file I/O. log should already carry the component and name.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("postgres sink: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{
		cfg:   cfg,
		sql:   newStatements(cfg.Schema, cfg.Table),
		where: "postgres " + cfg.Schema + "." + cfg.Table,
		log:   log,
		state: pipeline.StateStarting,
	}, nil
}

// Connect opens the session, creates the table when create_table is on
// (or checks that it exists) and prepares the staging table. It returns
// nil at once if the session is up. The password and certificates are
// read here, not in New, so that rotated credentials apply on reconnect.
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: connect: %w", s.where, pipeline.ErrClosed)
	}
	if s.conn != nil {
		if !s.conn.IsClosed() {
			return nil
		}
		s.dropLocked()
	}
	s.setState(pipeline.StateConnecting, "")
	if err := s.connectLocked(ctx); err != nil {
		err = fmt.Errorf("%s: connect: %w", s.where, err)
		s.setState(pipeline.StateRetrying, err.Error())
		return err
	}
	s.setState(pipeline.StateRunning, "")
	return nil
}

func (s *Sink) connectLocked(ctx context.Context) error {
	pc, err := s.connConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return err // pgx's message names host and user, never the password
	}
	if err := s.setup(ctx, conn); err != nil {
		_ = conn.Close(context.Background())
		return err
	}
	s.conn = conn
	s.connects.Add(1)
	s.log.Info("connected", "host", pc.Host, "database", pc.Database, "table", s.sql.regName,
		"tls", isTLS(conn))
	return nil
}

// connConfig parses url/dsn (pgx also reads the PG* environment variables
// and the passfile there) and applies the block's settings on top.
func (s *Sink) connConfig() (*pgx.ConnConfig, error) {
	pc, err := pgx.ParseConfig(s.cfg.connString())
	if err != nil {
		return nil, fmt.Errorf("parse connection string: %w", err)
	}
	if s.cfg.Password.IsSet() {
		pw, err := s.cfg.Password.Resolve() // errors name the source, never the value
		if err != nil {
			return nil, fmt.Errorf("password: %w", err)
		}
		pc.Password = pw
	}
	pc.ConnectTimeout = s.cfg.ConnectTimeout
	// wire_bytes: pgx's own dialler (timeouts, keep-alive) wrapped, so
	// the count is what the socket carries: protocol messages with the
	// bound parameters and COPY data, startup, TLS on top.
	if dial := pc.DialFunc; dial != nil {
		pc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return s.wire.Conn(nc), nil
		}
	}
	if pc.RuntimeParams == nil {
		pc.RuntimeParams = map[string]string{}
	}
	pc.RuntimeParams["application_name"] = s.cfg.ApplicationName
	pc.RuntimeParams["statement_timeout"] = strconv.FormatInt(s.cfg.StatementTimeout.Milliseconds(), 10)
	if s.cfg.TLS.Enabled {
		tc, err := s.cfg.TLS.Load()
		if err != nil {
			return nil, err
		}
		withHost := func(host string) *tls.Config {
			c := tc.Clone()
			if c.ServerName == "" && !strings.HasPrefix(host, "/") {
				c.ServerName = host
			}
			return c
		}
		// TLS is required: no plaintext fallback, every host verified.
		pc.TLSConfig = withHost(pc.Host)
		fbs := pc.Fallbacks[:0]
		for _, fb := range pc.Fallbacks {
			if fb.TLSConfig == nil {
				continue
			}
			fb.TLSConfig = withHost(fb.Host)
			fbs = append(fbs, fb)
		}
		pc.Fallbacks = fbs
	}
	return pc, nil
}

// setState records the state and last error reported by Status.
func (s *Sink) setState(state, lastErr string) {
	s.stMu.Lock()
	s.state, s.lastErr = state, lastErr
	s.stMu.Unlock()
}

// dropLocked closes the session without waiting on a dead server.
func (s *Sink) dropLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a cancelled context makes Close skip the goodbye message
	_ = s.conn.Close(ctx)
	s.conn = nil
}

// Write stores batch in one transaction: COPY into the session's staging
// table, then INSERT … SELECT … ON CONFLICT DO NOTHING into the table, then
// COMMIT. The commit is the confirmation; rows already present (same node
// and seq: a replay after a lost confirmation) are skipped, so a batch
// offered twice is stored once. All or nothing: there is no partial
// result. A lost session is reported as pipeline.ErrDisconnected.
func (s *Sink) Write(ctx context.Context, batch []model.Sample) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: write: %w", s.where, pipeline.ErrClosed)
	}
	if s.conn == nil {
		return fmt.Errorf("%s: write: %w", s.where, pipeline.ErrDisconnected)
	}
	if len(batch) == 0 {
		return nil
	}
	var rej *pipeline.RejectedError
	rows, idx := s.rejectNames(batch, &rej)
	var inserted int64
	var err error
	if len(rows) > 0 {
		inserted, err = s.writeTx(ctx, rows)
		if err != nil && dataError(err) && len(rows) > 1 {
			// Something in the batch breaks the transaction: find what,
			// committing the rest.
			inserted, err = s.isolate(ctx, rows, idx, 0, len(rows), err, &rej)
		} else if err != nil && dataError(err) {
			s.rejectRow(&rej, idx, 0, err)
			inserted, err = 0, nil
		}
	}
	if err != nil {
		s.writeErrors.Add(1)
		return s.failed(err)
	}
	stored := len(batch)
	if rej != nil {
		stored -= len(rej.Rejected)
	}
	s.transactions.Add(1)
	s.samples.Add(uint64(stored))
	s.inserted.Add(uint64(inserted))
	s.duplicates.Add(uint64(stored) - uint64(inserted))
	s.stMu.Lock()
	s.state, s.lastErr = pipeline.StateRunning, ""
	s.stMu.Unlock()
	if rej != nil {
		return rej
	}
	return nil
}

func (s *Sink) writeTx(ctx context.Context, batch []model.Sample) (int64, error) {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		// A no-op after Commit. Bounded on its own: ctx may be done, and a
		// hung server must not hold Write forever.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ConnectTimeout)
		_ = tx.Rollback(rctx)
		cancel()
	}()
	s.rows.reset(batch, s.cfg.Node)
	if _, err := tx.CopyFrom(ctx, stageTable, columns, &s.rows); err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	tag, err := tx.Exec(ctx, s.sql.insert)
	if err != nil {
		return 0, fmt.Errorf("insert: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return tag.RowsAffected(), nil
}

// failed classifies a failed transaction. The session is dropped (and the
// error wraps ErrDisconnected) when it is gone, when the server ended it
// (class 57P: terminated, shutting down) or when the table vanished, so
// that Connect sets everything up again. Other server errors leave the
// session usable: the transaction was rolled back and the engine retries.
func (s *Sink) failed(err error) error {
	var pgErr *pgconn.PgError
	isPg := errors.As(err, &pgErr)
	drop := s.conn.IsClosed() || !isPg ||
		strings.HasPrefix(pgErr.Code, "57P") || pgErr.Code == "42P01" // undefined_table
	if drop {
		s.dropLocked()
		s.disconnects.Add(1)
		s.log.Warn("connection lost", "table", s.sql.regName, "error", err)
		err = fmt.Errorf("%s: write: %w: %w", s.where, pipeline.ErrDisconnected, err)
		s.setState(pipeline.StateRetrying, err.Error())
		return err
	}
	err = fmt.Errorf("%s: write: %w", s.where, err)
	s.stMu.Lock()
	s.lastErr = err.Error()
	s.stMu.Unlock()
	return err
}

// Close ends the session. It works after a partial start and more than
// once.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.setState(pipeline.StateStopping, "")
	var err error
	if s.conn != nil {
		if cerr := s.conn.Close(ctx); cerr != nil {
			err = fmt.Errorf("%s: close: %w", s.where, cerr)
		}
		s.conn = nil
	}
	lastErr := ""
	if err != nil {
		lastErr = err.Error()
	}
	s.setState(pipeline.StateStopped, lastErr)
	s.log.Info("closed", "table", s.sql.regName)
	return err
}

// Status reports the state and counters: samples confirmed (committed),
// rows inserted and rows skipped as already present (replays), committed
// transactions, failed Writes, connects, sessions lost, and wire_bytes:
// every byte written to the server's socket (rows as COPY data, SQL,
// protocol, TLS), summed over sessions.
func (s *Sink) Status() pipeline.Status {
	s.stMu.Lock()
	st := pipeline.Status{Name: "postgres", State: s.state, LastError: s.lastErr}
	s.stMu.Unlock()
	st.Counters = map[string]uint64{
		"samples":        s.samples.Load(),
		"rows_inserted":  s.inserted.Load(),
		"duplicate_rows": s.duplicates.Load(),
		"transactions":   s.transactions.Load(),
		"write_errors":   s.writeErrors.Load(),
		"connects":       s.connects.Load(),
		"disconnects":    s.disconnects.Load(),
		"wire_bytes":     s.wire.Load(),
	}
	return st
}

// isTLS reports whether the session runs over TLS (sslmode=prefer may
// have fallen back to plaintext).
func isTLS(conn *pgx.Conn) bool {
	_, ok := conn.PgConn().Conn().(*tls.Conn)
	return ok
}
