// Package audit is Weir's tamper-evident trail of writes to OT: one
// JSON line per attempt (allowed, denied or failed), each carrying the
// SHA-256 (or, with a key, HMAC-SHA-256) of its own canonical bytes, which
// include the hash of the line before. Changing, removing, inserting or
// reordering a line breaks the chain at that line; Verify (`weir audit
// verify -file PATH`) finds it.
//
// A line looks like
//
//	{"seq":7,"time":"2025-05-01T10:00:00.5Z","caller":"api:alice","path":"acme/…/speed_setpoint",
//	 "old":300,"new":420,"result":"allowed","reason":"","note":"batch 42","prev_hash":"…","hash":"…"}
//
// (on one line). The hash covers the line's bytes with the final "hash"
// member removed; the first entry's prev_hash is Genesis (64 zeros).
//
// # Durability and failure
//
// Every entry is written with one write call and synced before Append
// returns (IEC 62443 CR 2.8, 3.9). After a failed write the Log refuses
// further entries until reopened (CR 2.10: never drop an audit record
// silently), and the write gate refuses writes to OT meanwhile. On Open,
// a torn last line is moved aside and the newest entry's hash is checked
// before the chain continues.
//
// # Caveats
//
// Without a key, the chain shows edits but cannot stop someone with write
// access to the file from recomputing every hash after their change: set
// key, or ship the trail (or just its newest hash) off the box. The file
// is not rotated; it grows by about 300 bytes per write attempt, and
// writes are rate-limited per tag by the write gate. Rotation with the
// chain continuing across files is future work.
package audit
