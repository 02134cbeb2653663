package alarms

import (
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Stage is where a Manager's events enter the data flow: a processor
// placed right after the rules. Process appends the events queued since
// the last call (raised and cleared by the rules in the same batch, or by
// the loss watch; acknowledged and shelved by operators), so they reach
// every sink and the processors after it (the latest-value store); Flush,
// on the engine's clock, ends shelves whose time is up and appends what
// is queued, so an operator's acknowledgement flows within a tick even
// when no data does.
//
// Rules only Raise and Clear; a Manager with no Stage in the chain keeps
// its events queued (bounded; overflow counted as events_dropped).
type Stage struct {
	m *Manager
}

var (
	_ pipeline.Processor = (*Stage)(nil)
	_ pipeline.Flusher   = (*Stage)(nil)
)

// NewStage returns the pipeline stage of m.
func NewStage(m *Manager) *Stage { return &Stage{m: m} }

// Process appends the queued alarm events to batch.
func (s *Stage) Process(batch []model.Sample) []model.Sample { return s.m.Drain(batch) }

// Flush unshelves alarms whose shelve time has passed at now and appends
// the queued alarm events to out.
func (s *Stage) Flush(now time.Time, out []model.Sample) []model.Sample {
	s.m.Expire(now)
	return s.m.Drain(out)
}
