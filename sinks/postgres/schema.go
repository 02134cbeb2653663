package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// stageTable is the session's staging table. COPY cannot skip conflicting
// rows, so a batch is copied here and moved with INSERT … ON CONFLICT DO
// NOTHING; ON COMMIT DELETE ROWS empties it at every commit.
var stageTable = pgx.Identifier{"pg_temp", "weir_stage"}

// statements are the SQL texts for one destination table, built once from
// validated identifiers and quoted by pgx.Identifier.
type statements struct {
	table   string // quoted schema.table
	schema  string // quoted schema
	dedup   string // quoted unique index name
	byPath  string // quoted (path, time) index name
	insert  string
	regName string // schema.table for to_regclass and create_hypertable
}

func newStatements(schema, table string) statements {
	cols := ""
	for i, c := range columns {
		if i > 0 {
			cols += ", "
		}
		cols += pgx.Identifier{c}.Sanitize()
	}
	st := statements{
		table:   pgx.Identifier{schema, table}.Sanitize(),
		schema:  pgx.Identifier{schema}.Sanitize(),
		dedup:   pgx.Identifier{table + "_dedup"}.Sanitize(),
		byPath:  pgx.Identifier{table + "_path_time"}.Sanitize(),
		regName: pgx.Identifier{schema, table}.Sanitize(),
	}
	st.insert = "INSERT INTO " + st.table + " (" + cols + ") SELECT " + cols + " FROM " +
		stageTable.Sanitize() + " ON CONFLICT DO NOTHING"
	return st
}

// setup prepares a fresh session: the destination (created when
// create_table is on, else checked) and the staging table.
func (s *Sink) setup(ctx context.Context, conn *pgx.Conn) error {
	st := &s.sql
	if *s.cfg.CreateTable {
		if err := s.createTable(ctx, conn); err != nil {
			return err
		}
	} else {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", st.regName).Scan(&exists); err != nil {
			return fmt.Errorf("check table: %w", err)
		}
		if !exists {
			return fmt.Errorf("table %s does not exist and create_table is false", st.regName)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+stageTable.Sanitize()+
		" ("+columnDefs+") ON COMMIT DELETE ROWS"); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	return nil
}

// createTable creates what is missing. With timescale and the extension
// present, a new table becomes a hypertable before its unique index is
// built, because TimescaleDB requires every unique index to include the
// partitioning column: (node, seq, time) there, (node, seq) otherwise.
func (s *Sink) createTable(ctx context.Context, conn *pgx.Conn) error {
	st := &s.sql
	if s.cfg.Schema != DefaultSchema {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regnamespace($1) IS NOT NULL", s.cfg.Schema).Scan(&exists); err != nil {
			return fmt.Errorf("check schema: %w", err)
		}
		if !exists {
			if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+st.schema); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+st.table+" ("+columnDefs+")"); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	hyper := false
	if s.cfg.Timescale {
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").Scan(&hyper); err != nil {
			return fmt.Errorf("check timescaledb: %w", err)
		}
		if !hyper {
			s.log.Warn("timescale is set but the timescaledb extension is not installed; using a plain table", "table", st.regName)
		} else if _, err := conn.Exec(ctx, "SELECT create_hypertable($1::regclass, 'time', if_not_exists => TRUE)", st.regName); err != nil {
			return fmt.Errorf("create hypertable: %w", err)
		}
	}
	key := "(node, seq)"
	if hyper {
		key = "(node, seq, time)"
	}
	if _, err := conn.Exec(ctx, "CREATE UNIQUE INDEX IF NOT EXISTS "+st.dedup+" ON "+st.table+" "+key); err != nil {
		return fmt.Errorf("create unique index: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE INDEX IF NOT EXISTS "+st.byPath+" ON "+st.table+" (path, time DESC)"); err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	return nil
}
