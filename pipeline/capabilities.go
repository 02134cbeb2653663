package pipeline

import (
	"time"

	"github.com/weir-edge/weir/model"
)

// Optional capabilities. A component implements the core contract
// (Source, Processor, Sink) and may offer more; the code that wires the
// gateway asks for a capability with a type assertion. Naming them here,
// rather than spelling an anonymous interface at each call site, lets an
// implementation state with a compile-time guard
//
//	var _ pipeline.TagLister = (*Source)(nil)
//
// that it offers the capability, so that a renamed method breaks the build
// instead of silently dropping the feature. StatusReporter and Flusher
// (pipeline.go) are capabilities of the same kind. The device-write
// capability lives where it is consumed, as writegate.Writer.

// TagLister is implemented by sources that know their tags before they run
// (a Modbus or OPC UA source's configured points, an MQTT source's mapped
// topics). The gateway registers those tags with the write gate, and the
// CLI shows them; a source that discovers its tags at run time does not
// implement it. Tags returns a copy the caller may keep.
type TagLister interface {
	Tags() []model.Tag
}

// Releaser is implemented by stores that stay open after Close so that a
// final drain can still read them (the durable buffer and its dead-letter
// store). Release frees the store for good: files closed, locks dropped.
// The engine calls it once it stops, and the builders call it when the
// gateway fails before the engine took the stores over.
type Releaser interface {
	Release() error
}

// RetryHinter is implemented by errors from Sink.Write that carry a delay
// the destination asked for (HTTP 429 or 503 with Retry-After). The engine
// finds it with errors.As and waits at least RetryAfter (capped at 5
// minutes) before offering the batch again, so a throttling server is not
// hammered on the sink's own, shorter backoff.
type RetryHinter interface {
	RetryAfter() time.Duration
}
