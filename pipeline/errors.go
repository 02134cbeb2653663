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
	// The engine logs and counts the samples as rejected and moves on, so
	// one poisoned batch never blocks a sink.
	ErrRejected = errors.New("rejected by destination")
	// ErrPermanent from Source.Run or Sink.Connect means the component
	// cannot work until its configuration or its environment changes (a
	// secret that is not set, an unreadable or invalid CA file): retrying
	// on a timer cannot help and would only fill the log. The engine marks
	// the component failed with the message instead of retrying it.
	ErrPermanent = errors.New("permanent failure")
)

// A Write error may also carry a delay the destination asked for (HTTP 429
// or 503 with Retry-After) by implementing
//
//	RetryAfter() time.Duration
//
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
