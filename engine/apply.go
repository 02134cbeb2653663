package engine

import (
	"context"
	"errors"

	"github.com/weir-edge/weir/pipeline"
)

// Change is a live reconfiguration of a running engine (hot reload): the
// gateway computes it from the difference between the running and the new
// configuration and builds only the components that are new or changed.
// Everything not named keeps running untouched: its connection, session,
// subscriptions and buffer.
//
// A changed component is removed and added under the same name in one
// Change. A removed sink is closed and its buffer released; a durable
// buffer stays on disk (weir buffer purge removes it).
type Change struct {
	RemoveSources []string
	AddSources    []SourceSpec
	RemoveSinks   []string
	AddSinks      []SinkSpec
	// ReplaceProcessors swaps the whole processor chain for Processors
	// (named by ProcessorNames) between two batches.
	ReplaceProcessors bool
	Processors        []pipeline.Processor
	ProcessorNames    []string
}

// Empty reports whether c changes nothing.
func (c Change) Empty() bool {
	return len(c.RemoveSources) == 0 && len(c.AddSources) == 0 && len(c.RemoveSinks) == 0 &&
		len(c.AddSinks) == 0 && !c.ReplaceProcessors
}

// Apply changes the running graph. Contract (hot reload):
//   - it may be called only while Run runs; it blocks until removed
//     components have stopped and added ones have been started;
//   - nothing accepted is lost: samples already in a removed sink's
//     durable buffer stay there; a removed source stops after its last
//     Emit returns;
//   - on error nothing was changed (names are checked before anything
//     stops).
//
// TODO(reload): implemented by the reload work; this stub keeps the
// contract compiling for its callers.
func (e *Engine) Apply(ctx context.Context, c Change) error {
	return errors.ErrUnsupported
}
