// Package nats is the NATS JetStream sink: it publishes samples to a
// stream and reports a Write as done only when JetStream acknowledged
// (stored) every message.
//
// Subjects are "<subject_prefix>.<tag path>" with '/' turned into '.', and
// the bytes a subject token cannot carry ('.', '*', '>', '%', whitespace,
// control characters) percent-escaped inside each level; Subject and PathOf
// convert both ways. In batch mode one message per asset goes to
// "<subject_prefix>.<asset path>" (the prefix itself for single-level
// paths). Payloads are the JSON of internal/payload.
//
// Publishing is asynchronous, bounded by max_pending, and every message
// carries Nats-Msg-Id "<client_id>-<instance>-<seq>" (batch mode:
// "…-<first seq>-<last seq>"), so a batch the engine offers again after a
// failure is de-duplicated by the stream's duplicate window. The instance
// is random per process because sequence ids restart with the process: a
// bare "<client_id>-<seq>" would make a restarted gateway's new samples
// look like duplicates of the previous run's and be dropped.
//
// Caveats: after a partial failure, the retried messages are stored after
// later messages that had already been acknowledged; consumers order by
// "seq". Replays older than the duplicate window (server default 2 min) are
// stored twice. The client never reconnects by itself; the engine calls
// Connect, which tries every configured server.
package nats
