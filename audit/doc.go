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
// # Rotation
//
// The active file is bounded by max_bytes (default 64 MiB): the entry that
// would pass the bound first renames the file STEM.<seq of its first
// entry, 20 digits>.EXT and starts a new one, continuing seq and the hash
// chain, so the files verify as one chain. max_files (default 10) rotated
// files are kept; older ones are deleted, each deletion logged with the
// file's last hash. Verify then accepts a chain that starts after seq 1 in
// the oldest rotated file, and says so. A crash at any step of a rotation
// loses no entry: Open continues from the newest rotated file when the
// active one is missing or empty.
//
// # Checkpoints and security events
//
// With a checkpoint file (OpenWith), the head (seq, hash) is signed with
// an ed25519 key and kept outside the trail — in the checkpoint file and
// as security.AuditCheckpoint events that reach IT — so lines cut off the
// end, an emptied file and a whole-file rewrite are found by
// VerifyCheckpoint, and Open refuses such a trail. Rotation never deletes
// a file the last published checkpoint does not cover (it raises an
// AuditProblem instead). EventRecorder appends non-write security events
// (logins, tokens, alarm commands, config applied…) to the same chain;
// their entries carry optional members that write entries omit, so old
// trails verify unchanged. Free text is capped at MaxText.
//
// # Caveats
//
// Without a key, the chain shows edits but cannot stop someone with write
// access to the file from recomputing every hash after their change: set
// key, or ship the trail (or just its newest hash) off the box. Deleting
// the oldest files, as max_files does, is indistinguishable from someone
// else doing it: the start of the kept chain cannot be checked.
package audit
