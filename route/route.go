package route

import (
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/security"
)

// Options build a Route (contract; the implementation is issue 14's).
type Options struct {
	// Sink names the sink, for counters and security events.
	Sink      string
	Selection Selection
	// MaxClass is the highest class the sink may receive; 0: DefaultClass.
	MaxClass Class
	// Classifier classifies tag paths; nil: every tag is DefaultClass.
	Classifier *Classifier
	// Processors are the sink's own chain, run after selection and the
	// class check, before the buffer; ProcessorNames name them.
	Processors     []pipeline.Processor
	ProcessorNames []string
	// Events receives one security.EgressDenied per sink and tag held
	// back by classification; nil: none.
	Events security.Recorder
}

// Counters are one route's totals since it started. After the buffer
// drained: In = Filtered + Denied + ChainIn, and ChainOut samples entered
// the buffer (a chain may drop, aggregate or add samples).
type Counters struct {
	In       uint64 // samples offered to the route
	Filtered uint64 // not selected (pattern or quality)
	Denied   uint64 // selected but above the sink's class: held back
	ChainIn  uint64 // handed to the sink's chain (= selected and allowed)
	ChainOut uint64 // left the chain into the buffer
	InBytes  uint64 // estimated bytes of In (model.Sample.Size)
	OutBytes uint64 // estimated bytes of ChainOut
}

// Route is one sink's compiled route. The engine calls it in push order
// (one batch at a time, never concurrently); Counters may be read at any
// time.
type Route struct {
	opts Options
}
