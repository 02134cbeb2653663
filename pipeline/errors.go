package pipeline

import (
	"errors"
	"fmt"
)

// Sentinel errors that steer the engine's control flow. Components wrap them
// with %w and the "where".
var (
	// ErrDisconnected from Sink.Write means the connection is gone: the
	// engine calls Connect again before the next Write.
	ErrDisconnected = errors.New("disconnected")
	// ErrClosed is returned by anything used after Close.
	ErrClosed = errors.New("closed")
	// ErrRejected from Sink.Write means the destination refused the batch
	// for good (an HTTP 400, a schema violation): retrying cannot succeed.
	// The engine moves the samples not confirmed to the sink's dead-letter
	// store, counts and logs them, and moves on, so one poisoned batch never
	// blocks a sink. A sink that knows which samples were refused returns
	// a *RejectedError instead, so that only those are set aside.
	ErrRejected = errors.New("rejected by destination")
	// ErrPermanent from Source.Run or Sink.Connect means the component
	// cannot work until its configuration or its environment changes (a
	// secret that is not set, an unreadable or invalid CA file): retrying
	// on a timer cannot help and would only fill the log. The engine marks
	// the component failed with the message instead of retrying it.
	ErrPermanent = errors.New("permanent failure")
)

// A Write error may also carry a delay the destination asked for (HTTP 429
// or 503 with Retry-After) by implementing RetryHinter (capabilities.go).
// The engine then waits at least that long (capped at 5 minutes) before
// offering the batch again.

// PartialWriteError from Sink.Write reports that the first Delivered samples
// of the batch were confirmed by the destination and the rest were not. The
// engine acknowledges the confirmed prefix and offers the rest again, so a
// sink with per-item results (Kafka, JetStream, a database) never causes
// the confirmed part to be sent twice.
type PartialWriteError struct {
	Delivered int
	Err       error
}

func (e *PartialWriteError) Error() string {
	return fmt.Sprintf("%d samples delivered, the rest failed: %v", e.Delivered, e.Err)
}

func (e *PartialWriteError) Unwrap() error { return e.Err }

// Causes of a rejection, as reported in Rejection.Cause. They are label
// values of the dead-letter counters and the names of the dead-letter
// store's parts, so they stay few, fixed and snake_case.
const (
	// CauseInvalidName: the tag path cannot name anything at the
	// destination (a topic, subject or key that is not UTF-8, holds a
	// wildcard, NUL or a control character, or is too long).
	CauseInvalidName = "invalid_name"
	// CauseOversize: the message is larger than the destination accepts
	// (for MQTT also a broker's DISCONNECT or PUBACK 0x95 packet too
	// large).
	CauseOversize = "oversize"
	// CauseUnsupported: the destination refuses the value's type.
	CauseUnsupported = "unsupported_type"
	// CauseMalformed: the destination dropped the connection right after
	// this message (an MQTT DISCONNECT 0x81 malformed packet, 0x82
	// protocol error, 0x90 topic name invalid, 0x99 payload format
	// invalid — 0x95 packet too large is CauseOversize; an MQTT 3.1.1
	// broker closing the socket on this one message again when it was
	// sent alone).
	CauseMalformed = "malformed"
	// CauseRefused: the destination answered this message with a refusal
	// that retrying cannot change (an HTTP 400, a PUBACK failure code, a
	// database constraint).
	CauseRefused = "refused"
)

// Causes lists every cause, for tools that walk the dead-letter store.
var Causes = []string{CauseInvalidName, CauseOversize, CauseUnsupported, CauseMalformed, CauseRefused}

// Rejection is one sample of a Write's batch that the destination refused
// for good.
type Rejection struct {
	// Index is the sample's position in the batch given to Write.
	Index int
	// Cause is one of the Cause constants.
	Cause string
	// Err says what exactly was wrong, for the log.
	Err error
}

// RejectedError from Sink.Write reports that the samples listed were
// refused for good (a poison pill) and that EVERY OTHER sample of the batch
// was confirmed by the destination. The engine moves the rejected samples
// to the sink's dead-letter store, acknowledges the whole batch in the
// buffer and goes on, so one bad sample never blocks the samples behind
// it. A sink that cannot confirm the others (the connection failed too)
// returns that failure instead; it then finds the same rejections again on
// the next attempt. It wraps ErrRejected.
type RejectedError struct {
	Rejected []Rejection
}

func (e *RejectedError) Error() string {
	if len(e.Rejected) == 0 {
		return "no samples rejected"
	}
	r := e.Rejected[0]
	if len(e.Rejected) == 1 {
		return fmt.Sprintf("1 sample rejected (%s): %v", r.Cause, r.Err)
	}
	return fmt.Sprintf("%d samples rejected, the first (%s): %v", len(e.Rejected), r.Cause, r.Err)
}

func (e *RejectedError) Unwrap() error { return ErrRejected }

// Reject appends a rejection of batch[index] to *rej, creating the error
// on first use; sinks call it while encoding a batch.
func Reject(rej **RejectedError, index int, cause string, err error) {
	if *rej == nil {
		*rej = &RejectedError{}
	}
	(*rej).Rejected = append((*rej).Rejected, Rejection{Index: index, Cause: cause, Err: err})
}
