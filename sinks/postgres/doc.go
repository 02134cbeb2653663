// Package postgres writes samples into a PostgreSQL table, which may be a
// TimescaleDB hypertable (configuration key `postgres`).
//
// # Table
//
// Created when missing (create_table, default true):
//
//	CREATE TABLE IF NOT EXISTS <schema>.<table> (
//	  time         timestamptz NOT NULL,          -- source timestamp (µs)
//	  path         text NOT NULL,                 -- tag path, "site/line1/temp"
//	  value_double double precision,            -- float; uint64 > 2^63-1 (approximate)
//	  value_int    bigint,                        -- int, uint64 ≤ 2^63-1
//	  value_text   text,                          -- string; array as JSON; uint64 > 2^63-1 exact
//	  value_bool   boolean,
//	  quality      smallint NOT NULL,             -- 0 good, 1 uncertain, 2 bad
//	  reason       text,                          -- NULL when good
//	  edge_time    timestamptz NOT NULL,          -- when the gateway read it
//	  seq          bigint NOT NULL,               -- the gateway's sequence id
//	  historical   boolean NOT NULL DEFAULT false, -- replayed from the buffer
//	  node         text NOT NULL);                -- the gateway (config node)
//	CREATE UNIQUE INDEX <table>_dedup ON <schema>.<table> (node, seq);  -- (node, seq, time) on a hypertable
//	CREATE INDEX <table>_path_time ON <schema>.<table> (path, time DESC);
//
// Exactly one value column is set per row, none for a sample without a
// value (bad quality), except that a uint64 beyond bigint sets both
// value_double and value_text. Text that PostgreSQL cannot store (NUL
// bytes, invalid UTF-8) has those bytes replaced by U+FFFD, so that one
// odd string cannot block its batch forever; a tag path with such bytes is
// rejected instead (pipeline.RejectedError), and so is a row the server
// refuses (a data exception or constraint), found by writing the batch in
// halves (reject.go). The engine dead-letters rejected samples.
//
// With timescale: true and the timescaledb extension installed, a new
// table becomes a hypertable on time before its unique index is built
// (TimescaleDB requires unique indexes to include the time column). An
// existing plain table is not converted.
//
// # Delivery
//
// One session (a single pgx.Conn: the engine writes one batch at a time,
// so a pool would only hold idle connections). Each Write is one
// transaction: COPY into a session-local staging table, INSERT … SELECT …
// ON CONFLICT DO NOTHING into the table, COMMIT. The commit is the
// confirmation. A replayed batch (the engine offers a batch again when a
// confirmation was lost) finds its (node, seq) rows present and adds
// nothing, so rows are stored exactly once. Write is all or nothing: it
// never returns a PartialWriteError.
//
// Errors: a lost session, one ended by the server (SQLSTATE class 57P,
// e.g. pg_terminate_backend), a Write cut short by its context, or a
// vanished table wrap pipeline.ErrDisconnected, and Connect opens a new
// session (recreating the table). Other server errors roll back and are
// retried on the same session.
//
// Seq values of 2^63 and above (not reached by a per-process counter)
// would be stored as negative bigints.
package postgres
