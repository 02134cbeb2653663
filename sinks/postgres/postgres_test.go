package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sinks/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testURL is the peer database; WEIR_TEST_POSTGRES_URL overrides it.
func testURL() string {
	if u := os.Getenv("WEIR_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// admin connects to the peer database for setup and inspection, skipping
// the test when it is not reachable (failing with WEIR_REQUIRE_PEERS=1).
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, testURL())
	if err != nil {
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatalf("PostgreSQL at %s is required: %v", testURL(), err)
		}
		t.Skipf("PostgreSQL at %s is not reachable (set WEIR_REQUIRE_PEERS=1 to fail): %v", testURL(), err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func unique(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// dest is one test's table and application name, dropped after the test.
type dest struct {
	db      *pgx.Conn
	table   string
	appName string
}

func newDest(t testing.TB) *dest {
	d := &dest{db: admin(t), table: unique("weir_t_"), appName: unique("weir-test-")}
	t.Cleanup(func() {
		if _, err := d.db.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{d.table}.Sanitize()); err != nil {
			t.Errorf("drop %s: %v", d.table, err)
		}
	})
	return d
}

func (d *dest) config() Config {
	return Config{URL: testURL(), Table: d.table, Node: "test-node", ApplicationName: d.appName, StatementTimeout: 10 * time.Second}
}

func (d *dest) sink(t testing.TB, mod func(*Config)) *Sink {
	t.Helper()
	cfg := d.config()
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func connected(t testing.TB, s *Sink) *Sink {
	t.Helper()
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return s
}

// received reads the table back as samples, ordered by seq.
func (d *dest) received(t testing.TB) []model.Sample {
	t.Helper()
	rows, err := d.db.Query(ctxT(t), `SELECT time, path, value_double, value_int, value_text, value_bool,
		quality, reason, edge_time, seq, historical FROM `+pgx.Identifier{d.table}.Sanitize()+` ORDER BY seq`)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return nil // the sink has not connected yet (it creates the table): nothing arrived
	}
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	var out []model.Sample
	for rows.Next() {
		var (
			ts, edge time.Time
			s        model.Sample
			dbl      *float64
			i64      *int64
			text     *string
			b        *bool
			quality  int16
			reason   *string
			seq      int64
		)
		if err := rows.Scan(&ts, &s.Path, &dbl, &i64, &text, &b, &quality, &reason, &edge, &seq, &s.Historical); err != nil {
			t.Fatalf("scan: %v", err)
		}
		switch {
		case dbl != nil && text != nil: // a uint64 beyond bigint
			u, err := strconv.ParseUint(*text, 10, 64)
			if err != nil {
				t.Fatalf("big uint text %q: %v", *text, err)
			}
			s.Value = model.Uint(u)
		case dbl != nil:
			s.Value = model.Float(*dbl)
		case i64 != nil:
			s.Value = model.Int(*i64)
		case text != nil:
			s.Value = model.String(*text)
		case b != nil:
			s.Value = model.Bool(*b)
		}
		s.Quality.Code = model.QualityCode(quality)
		if reason != nil {
			s.Quality.Reason = *reason
		}
		s.SourceTime, s.EdgeTime, s.Seq = ts.UnixNano(), edge.UnixNano(), uint64(seq)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows: %v", err)
	}
	return out
}

// cut terminates the sink's sessions now and, until restore is called,
// every session it opens again. The loop is the outage itself (PostgreSQL
// has no hook to refuse one client), not synchronisation.
func (d *dest) cut(t testing.TB) (restore func()) {
	t.Helper()
	// A separate connection: the loop runs concurrently with the test's
	// own queries on d.db.
	killer, err := pgx.Connect(ctxT(t), testURL())
	if err != nil {
		t.Fatalf("connect killer: %v", err)
	}
	terminate := func(ctx context.Context) error {
		_, err := killer.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", d.appName)
		return err
	}
	if err := terminate(ctxT(t)); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = terminate(ctx)
			}
		}
	}()
	var once sync.Once
	restore = func() {
		once.Do(func() {
			cancel()
			<-done
			_ = killer.Close(context.Background())
		})
	}
	t.Cleanup(restore)
	return restore
}

func TestConformance(t *testing.T) {
	var dests sync.Map // *testing.T → *dest
	get := func(t *testing.T) *dest {
		d, ok := dests.Load(t)
		if !ok {
			t.Fatal("no destination for this test")
		}
		return d.(*dest)
	}
	admin(t) // skip early when PostgreSQL is absent
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) pipeline.Sink {
			d := newDest(t)
			dests.Store(t, d)
			return d.sink(t, nil)
		},
		Received: func(t *testing.T) []model.Sample { return get(t).received(t) },
		Outage:   func(t *testing.T) func() { return get(t).cut(t) },
		// Each row carries at least its path and two 8-byte integers
		// (time, seq) as bound COPY data.
		MinWireBytes: func(b []model.Sample) uint64 {
			var n uint64
			for _, sm := range b {
				n += uint64(len(sm.Path) + 16)
			}
			return n
		},
	})
}

func TestReplayStoredOnce(t *testing.T) {
	d := newDest(t)
	s := connected(t, d.sink(t, nil))
	first := sinktest.Batch("replay", 3, 20, 1)
	tests := []struct {
		name      string
		batch     []model.Sample
		wantRows  int
		wantAdded uint64
	}{
		{"first write", first, 20, 20},
		{"same batch again", first, 20, 0},
		{"overlapping batch", sinktest.Batch("replay", 3, 20, 11), 30, 10},
		{"duplicates inside one batch", append(sinktest.Batch("replay", 3, 5, 31), sinktest.Batch("replay", 3, 5, 31)...), 35, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Status().Counters["rows_inserted"]
			if err := s.Write(ctxT(t), tt.batch); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if got := len(d.received(t)); got != tt.wantRows {
				t.Errorf("%d rows, want %d", got, tt.wantRows)
			}
			if added := s.Status().Counters["rows_inserted"] - before; added != tt.wantAdded {
				t.Errorf("rows_inserted grew by %d, want %d", added, tt.wantAdded)
			}
		})
	}
	// Another node's seqs are its own.
	other := connected(t, d.sink(t, func(c *Config) { c.Node = "other-node" }))
	if err := other.Write(ctxT(t), first); err != nil {
		t.Fatal(err)
	}
	if got := len(d.received(t)); got != 55 {
		t.Errorf("%d rows after another node wrote, want 55", got)
	}
}

// TestOutageExactlyOnce writes batches like the engine does (retry the same
// batch until it is confirmed, Connect after ErrDisconnected) while the
// server cuts every session of the sink for a while; every sample must end
// up stored exactly once.
func TestOutageExactlyOnce(t *testing.T) {
	d := newDest(t)
	s := connected(t, d.sink(t, nil))
	const batches, per, outageAt, outageFailures = 20, 250, 5, 8
	var restore func()
	failures, failuresInOutage := 0, 0
	for i := range batches {
		if i == outageAt {
			restore = d.cut(t)
		}
		batch := sinktest.Batch("outage", 7, per, uint64(i*per+1))
		for attempt := 0; ; attempt++ {
			if attempt > 200 {
				t.Fatalf("batch %d: not confirmed after %d attempts", i, attempt)
			}
			err := s.Write(ctxT(t), batch)
			if err == nil {
				break
			}
			failures++
			if restore != nil {
				if failuresInOutage++; failuresInOutage >= outageFailures {
					restore()
					restore = nil
				}
			}
			if !errors.Is(err, pipeline.ErrDisconnected) {
				t.Logf("batch %d: %v", i, err)
				continue
			}
			if cerr := s.Connect(ctxT(t)); cerr != nil {
				failures++
			}
		}
		if restore != nil && i >= outageAt+5 {
			restore() // the sink outran the terminate loop for several batches
			restore = nil
		}
	}
	if failures == 0 {
		t.Fatal("no Write failed: the outage did not take effect")
	}
	var rows, distinct int
	err := d.db.QueryRow(ctxT(t), "SELECT count(*), count(DISTINCT seq) FROM "+pgx.Identifier{d.table}.Sanitize()).Scan(&rows, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if rows != batches*per || distinct != batches*per {
		t.Fatalf("%d rows, %d distinct seqs; want %d of each", rows, distinct, batches*per)
	}
	st := s.Status().Counters
	t.Logf("failures %d, connects %d, disconnects %d, duplicate rows skipped %d",
		failures, st["connects"], st["disconnects"], st["duplicate_rows"])
	if st["disconnects"] == 0 || st["connects"] < 2 {
		t.Errorf("counters %v", st)
	}
}

func TestValueMapping(t *testing.T) {
	d := newDest(t)
	s := connected(t, d.sink(t, nil))
	batch := []model.Sample{
		{Path: "m/float", Value: model.Float(math.Inf(1)), Seq: 1},
		{Path: "m/nan", Value: model.Float(math.NaN()), Seq: 2},
		{Path: "m/uint-small", Value: model.Uint(42), Seq: 3},
		{Path: "m/uint-max", Value: model.Uint(math.MaxUint64), Seq: 4},
		{Path: "m/array", Value: model.Array([]model.Value{model.Int(1), model.Float(2.5)}), Seq: 5},
		{Path: "m/text", Value: model.String("a\x00b\xfe"), Seq: 6, Historical: true},
		{Path: "m/bad", Quality: model.Quality{Code: model.Bad, Reason: "device unreachable"}, Seq: 7},
		// A name is not cleaned (that would store another tag): rejected.
		{Path: "m/nul\x00and\xffbad", Value: model.Int(1), Seq: 8},
	}
	err := s.Write(ctxT(t), batch)
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[0].Index != 7 || rej.Rejected[0].Cause != pipeline.CauseInvalidName {
		t.Fatalf("Write = %v, want the bad path rejected", err)
	}
	got := d.received(t)
	if len(got) != len(batch)-1 {
		t.Fatalf("%d rows", len(got))
	}
	if f := got[0].Value.AsFloat(); !math.IsInf(f, 1) {
		t.Errorf("inf: %v", got[0].Value)
	}
	if f := got[1].Value.AsFloat(); !math.IsNaN(f) {
		t.Errorf("nan: %v", got[1].Value)
	}
	if got[2].Value.AsInt() != 42 || got[3].Value.AsUint() != math.MaxUint64 {
		t.Errorf("uints: %#v %#v", got[2].Value, got[3].Value)
	}
	if got[4].Value.AsString() != "[1,2.5]" {
		t.Errorf("array: %#v", got[4].Value)
	}
	if got[5].Value.AsString() != "a\uFFFDb\uFFFD" || !got[5].Historical {
		t.Errorf("cleaned text: %q %#v", got[5].Path, got[5].Value)
	}
	if got[6].Value.IsValid() || got[6].Quality.Code != model.Bad || got[6].Quality.Reason != "device unreachable" {
		t.Errorf("bad quality: %+v", got[6])
	}
}

// TestPoisonRowIsolated: a row the server refuses (here a CHECK
// constraint on one value) breaks the whole COPY; the sink writes the
// batch again in halves, commits every good row and rejects exactly the
// refused one.
func TestPoisonRowIsolated(t *testing.T) {
	d := newDest(t)
	s := connected(t, d.sink(t, nil))
	if _, err := d.db.Exec(ctxT(t), "ALTER TABLE "+d.table+" ADD CONSTRAINT no_666 CHECK (value_int IS DISTINCT FROM 666)"); err != nil {
		t.Fatal(err)
	}
	batch := sinktest.Batch("pg", 3, 20, 1)
	batch[13].Value = model.Int(666)
	err := s.Write(ctxT(t), batch)
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[0].Index != 13 || rej.Rejected[0].Cause != pipeline.CauseRefused {
		t.Fatalf("Write = %v, want index 13 refused", err)
	}
	if got := d.received(t); len(got) != 19 {
		t.Fatalf("%d rows stored, want the 19 good ones", len(got))
	}
	if err := s.Write(ctxT(t), sinktest.Batch("pg", 3, 5, 100)); err != nil {
		t.Fatalf("next Write: %v", err)
	}
}

func TestSchemaAndOptions(t *testing.T) {
	db := admin(t)
	schema := unique("weir_s_")
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	d := &dest{db: db, table: "samples", appName: unique("weir-test-")}
	mkSink := func(mod func(*Config)) *Sink {
		return d.sink(t, func(c *Config) {
			c.Schema = schema
			if mod != nil {
				mod(c)
			}
		})
	}

	t.Run("create_table false and table missing", func(t *testing.T) {
		s := mkSink(func(c *Config) { f := false; c.CreateTable = &f })
		err := s.Connect(ctxT(t))
		if err == nil || err.Error() != fmt.Sprintf(`postgres %s.samples: connect: table "%s"."samples" does not exist and create_table is false`, schema, schema) {
			t.Fatalf("Connect: %v", err)
		}
	})
	t.Run("creates schema; timescale without the extension falls back", func(t *testing.T) {
		s := connected(t, mkSink(func(c *Config) { c.Timescale = true }))
		if err := s.Write(ctxT(t), sinktest.Batch("schema", 1, 3, 1)); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(ctxT(t), "SELECT count(*) FROM "+pgx.Identifier{schema, "samples"}.Sanitize()).Scan(&n); err != nil || n != 3 {
			t.Fatalf("count %d, %v", n, err)
		}
	})
	t.Run("session settings", func(t *testing.T) {
		s := connected(t, mkSink(func(c *Config) { c.StatementTimeout = 1234 * time.Millisecond }))
		var timeout, app string
		if err := s.conn.QueryRow(ctxT(t), "SELECT current_setting('statement_timeout'), current_setting('application_name')").Scan(&timeout, &app); err != nil {
			t.Fatal(err)
		}
		if timeout != "1234ms" || app != d.appName {
			t.Errorf("statement_timeout %q, application_name %q", timeout, app)
		}
	})
	t.Run("table dropped while running", func(t *testing.T) {
		s := connected(t, mkSink(nil))
		if _, err := db.Exec(ctxT(t), "DROP TABLE "+pgx.Identifier{schema, "samples"}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		err := s.Write(ctxT(t), sinktest.Batch("drop", 1, 2, 100))
		if !errors.Is(err, pipeline.ErrDisconnected) {
			t.Fatalf("Write: %v, want ErrDisconnected so Connect recreates the table", err)
		}
		connected(t, s)
		if err := s.Write(ctxT(t), sinktest.Batch("drop", 1, 2, 100)); err != nil {
			t.Fatalf("Write after reconnect: %v", err)
		}
	})
}

func TestTLSAndPassword(t *testing.T) {
	d := newDest(t)
	var ssl string
	if err := d.db.QueryRow(ctxT(t), "SHOW ssl").Scan(&ssl); err != nil || ssl != "on" {
		t.Skipf("server has ssl=%q (%v)", ssl, err)
	}
	pki := tlstest.Generate(t, t.TempDir())
	t.Setenv("WEIR_TEST_PG_PASSWORD", "ignored-by-trust-auth")
	tests := []struct {
		name string
		tls  tlsconf.Config
		ok   bool
	}{
		{"tls required, server not verified", tlsconf.Config{Enabled: true, InsecureSkipVerify: true}, true},
		{"tls required, unknown CA", tlsconf.Config{Enabled: true, CAFile: pki.OtherCA}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := d.sink(t, func(c *Config) {
				c.TLS = tt.tls
				c.Password = conf.Secret{Env: "WEIR_TEST_PG_PASSWORD"}
			})
			err := s.Connect(ctxT(t))
			if !tt.ok {
				if err == nil {
					t.Fatal("Connect succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if !isTLS(s.conn) {
				t.Error("session is not TLS")
			}
		})
	}
	t.Run("password source missing", func(t *testing.T) {
		s := d.sink(t, func(c *Config) { c.Password = conf.Secret{Env: "WEIR_TEST_PG_UNSET"} })
		if err := s.Connect(ctxT(t)); err == nil || err.Error() != fmt.Sprintf("postgres public.%s: connect: password: secret: environment variable WEIR_TEST_PG_UNSET is not set", d.table) {
			t.Fatalf("Connect: %v", err)
		}
	})
}

func TestLifecycle(t *testing.T) {
	d := newDest(t)
	s := d.sink(t, nil)
	if err := s.Write(ctxT(t), sinktest.Batch("l", 1, 1, 1)); !errors.Is(err, pipeline.ErrDisconnected) {
		t.Errorf("Write before Connect: %v", err)
	}
	connected(t, s)
	connected(t, s) // idempotent
	if err := s.Write(ctxT(t), nil); err != nil {
		t.Errorf("empty Write: %v", err)
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Connect(ctxT(t)); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("Connect after Close: %v", err)
	}
	if st := s.Status(); st.State != pipeline.StateStopped || st.Counters["connects"] != 1 {
		t.Errorf("status %+v", st)
	}
}

func BenchmarkWrite(b *testing.B) {
	d := newDest(b)
	s := connected(b, d.sink(b, nil))
	const n = 5000
	ctx := context.Background()
	b.ReportAllocs()
	batch := sinktest.Batch("bench", 100, n, 1)
	for b.Loop() {
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		for i := range batch { // fresh seqs: every row is inserted, none skipped
			batch[i].Seq += n
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "samples/s")
}
