// Package historian is the local historian: a sink kind (`historian:`)
// that keeps every sample on the box in SQLite (modernc.org/sqlite, pure
// Go, no cgo), and a query API over it (Store: Raw, Aggregate, Latest,
// Tags) for charts, the UI and exports. Aggregates count good-quality
// samples only (AggregateWith: any quality on request), a bad or uncertain
// sample ends the value before it (a gap, not a hold through an outage),
// and bucket edges are multiples of the interval since the epoch, so a
// sliding chart window keeps them.
//
// Why a sink: it rides the same durable buffer and acknowledgement as any
// other destination, so an outage of the disk or a restart loses nothing
// the buffer held, and a replay after a crash is harmless (below).
//
// Layout, and why:
//
//   - One database file per UTC day under dir (2026-03-01.db). Retention
//     and the disk bound then delete whole files: no DELETE over millions
//     of rows, no VACUUM, no fragmentation, and the space is back at once.
//     A query over a range opens only the days it overlaps. At most
//     maxOpenDays files stay open (least recently used closed first).
//   - WAL journal: queries read beside the writer without blocking it.
//     synchronous=FULL: a Write acknowledged to the buffer survives a power
//     cut, since the buffer then forgets the batch.
//   - tags (id, path) and samples (tag, t ns, kind, v, q, reason, seq),
//     primary key (tag, t) in a WITHOUT ROWID table: the index a range
//     query for one tag needs is the table itself, in time order. v is
//     INTEGER or REAL for numbers (so SQL and aggregates see numbers),
//     TEXT for strings and arrays (their JSON), NULL for NaN; kind
//     restores the exact model.Value (bool, int, uint, float, string).
//     Quality keeps its code and reason.
//   - One value per tag per nanosecond: a sample with the same tag and time
//     replaces the stored one (INSERT OR REPLACE), so a batch the buffer
//     replays is stored once.
//   - Each Write is one transaction per day file it touches (one, unless
//     the batch spans midnight UTC).
//
// Disk policy, applied at Connect and after each Write: days wholly older
// than now - retention are deleted; then, while the files (with their WAL)
// exceed max_bytes, the oldest day is deleted, never the newest one. The
// WAL counts, so its checkpoint interval is a sixteenth of max_bytes, a
// checkpointed WAL is truncated (journal_size_limit), and the WAL is
// checkpointed (TRUNCATE) before the store is declared over. Each
// deletion is logged at warn level with its reason. Samples older than the
// retention are dropped (logged) rather than recreating a deleted day.
// Samples more than a day ahead of the clock are refused (refused): the
// newest day is never deleted for max_bytes, so a source with a wrong clock
// must not make one.
// Samples with an empty or non-UTF-8 path are refused (invalid_name) and
// set aside by the engine as dead letters; the rest of the batch is kept.
//
// When the newest day alone is over max_bytes, or the file system has
// less than min_free_bytes free, Write refuses whole batches with ErrFull
// (retryable): nothing is deleted to make room, the buffer in front keeps
// the samples, and Write accepts again once there is room.
//
// Time is SourceTime, or EdgeTime when the source gave none.
//
// Rollups: each day file also keeps, per tag and 30 s block, a summary
// of the block as the aggregates see it, written in the same transaction
// as the samples; aggregates whose interval is a multiple of 30 s read
// them instead of every sample (a day of a 1 s tag: 2,880 rows, not
// 86,400). How and why: rollup.go.
//
// Compression at ingest (deadband, swinging door; off by default) and why
// its held point is stored before a batch is acknowledged: compress.go.
package historian
