package pipeline

import "errors"

// Sentinel errors that steer the engine's control flow. Components wrap them
// with %w and the "where".
var (
	// ErrDisconnected from Sink.Write means the connection is gone: the
	// engine calls Connect again before the next Write.
	ErrDisconnected = errors.New("disconnected")
	// ErrClosed is returned by anything used after Close.
	ErrClosed = errors.New("closed")
)
