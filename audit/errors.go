package audit

import "errors"

// Sentinel errors of a verification against a checkpoint (errors.Is); the
// error's text says what was found.
var (
	// ErrTruncated: the trail ends before the checkpoint's seq — entries
	// were cut off its end (or rotated files removed).
	ErrTruncated = errors.New("audit trail truncated")
	// ErrEmptyTrail: the trail is empty or missing, but a checkpoint
	// covers entries.
	ErrEmptyTrail = errors.New("audit trail empty")
	// ErrRewritten: the entry at the checkpoint's seq has another hash —
	// the trail was rewritten (or is checked with another key).
	ErrRewritten = errors.New("audit trail rewritten")
	// ErrHashMismatch: an entry's hash is not the hash of its bytes —
	// changed, or checked with another key (or none, for a keyed trail).
	ErrHashMismatch = errors.New("hash mismatch (entry changed, or a different key)")
	// ErrBadSignature: a checkpoint's signature does not verify.
	ErrBadSignature = errors.New("bad checkpoint signature")
)
