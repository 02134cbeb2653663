// Package durable is the store-and-forward buffer of a sink: a
// buffer.Buffer whose samples survive a crash, a power loss and a restart,
// kept in one Pebble store per sink (<data_dir>/buffers/<sink name>).
//
// A sample Weir accepted reaches the sink, in order, or its loss is
// counted by cause (full, age, disk_full, corrupt), logged at a limited
// rate and visible in Stats. Push returns only once the samples are
// stored, and with fsync always or group only once they are synced.
// Samples leave the store only when the sink acknowledged them; whatever
// was not acknowledged when the process stopped is delivered again after
// the restart, marked Historical.
//
// Close refuses new samples while Next still hands out what is held, as
// the buffer.Buffer contract wants; Release closes the store and must be
// called once the sink's worker has stopped.
//
// Caveats: delivery is at-least-once (after a crash, samples acked just
// before it may come again; consumers de-duplicate by Seq); max_age judges
// by EdgeTime, a wall clock, and order is always by position, never by
// time; the free-space reserve (min_free_bytes) is what keeps the store
// from ever writing into a full disk, which Pebble treats as fatal. Acked
// data frees disk only once compacted: the buffer compacts the acked span
// itself and counts what that gives back as free (reclaim.go).
package durable
