package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/internal/latency"
	"github.com/weir-edge/weir/pipeline"
)

// ComponentStatus is the engine's view of one component merged with what
// the component reports itself.
type ComponentStatus struct {
	Kind string `json:"kind"` // "source", "processor" or "sink"
	pipeline.Status
	// Up is whether the component moves data now (see Readiness in the
	// package doc): a source runs, a sink is connected and its last write
	// succeeded.
	Up      bool          `json:"up"`
	Buffer  *buffer.Stats `json:"buffer,omitempty"`
	Latency *LatencyStats `json:"latency,omitempty"`
	// GatewayLatency is Latency measured from each sample's arrival at the
	// gateway instead of its source time: Weir's own share.
	GatewayLatency *LatencyStats `json:"gateway_latency,omitempty"`
	// DeadLetters (sinks only) counts the samples the destination refused
	// for good, by cause, and describes the dead-letter store.
	DeadLetters *DeadLetterStatus `json:"dead_letters,omitempty"`
}

// LatencyStats summarises sample taken → sink confirmed, for live
// (not replayed) samples.
type LatencyStats struct {
	Count uint64  `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
	// Buckets is the same distribution in the fixed buckets of a
	// Prometheus histogram, for /metrics.
	Buckets latency.Buckets `json:"-"`
}

// Status is the state of the whole engine.
type Status struct {
	Ready bool `json:"ready"`
	// NotReady says why Ready is false, one reason per line.
	NotReady   []string          `json:"not_ready,omitempty"`
	Uptime     float64           `json:"uptime_seconds"`
	Emitted    uint64            `json:"samples_emitted"`
	Filtered   uint64            `json:"samples_filtered"`
	Components []ComponentStatus `json:"components"`
}

// Status snapshots every component. Safe to call at any time.
func (e *Engine) Status() Status {
	st := Status{
		Emitted:  e.emitted.Load(),
		Filtered: e.filtered.Load(),
	}
	if started := e.started.Load(); started != nil {
		// On the same clock as started, so an injected clock works.
		st.Uptime = e.opts.Now().Sub(*started).Seconds()
	}
	e.graphMu.RLock()
	sources, sinks, procs, procNames := e.sources, e.sinks, e.procs, e.procNames
	e.graphMu.RUnlock()
	for _, s := range sources {
		cs := componentStatus("source", s.spec.Name, s.spec.Source, &s.health)
		cs.Counters["restarts"] = s.restarts.Load()
		st.Components = append(st.Components, cs)
	}
	for i, p := range procs {
		if ps, ok := processorStatus(p, i, procNames); ok {
			st.Components = append(st.Components, ps)
		}
	}
	var routeProcs []ComponentStatus
	for _, s := range sinks {
		cs := componentStatus("sink", s.spec.Name, s.spec.Sink, &s.health)
		cs.Counters["samples_written"] = s.written.Load()
		cs.Counters["batches_written"] = s.batches.Load()
		cs.Counters["write_errors"] = s.writeErrors.Load()
		cs.Counters["connects"] = s.connects.Load()
		cs.Counters["samples_rejected"] = s.rejected.Load()
		cs.Counters["samples_replayed"] = s.historical.Load()
		bs := s.spec.Buffer.Stats()
		cs.Buffer = &bs
		cs.Latency = latencyStats(&s.latency)
		cs.GatewayLatency = latencyStats(&s.gatewayLatency)
		cs.DeadLetters = s.deadLetterStatus()
		// A sink is up while connected and its last write succeeded: the
		// engine's state is running only then.
		engineState, _, _ := s.snapshot()
		cs.Up = cs.Up && s.isConnected() && engineState == pipeline.StateRunning
		routeProcs = append(routeProcs, routeStatus(s, &cs)...)
		st.Components = append(st.Components, cs)
	}
	// A sink's own processors are listed after the sinks, so that the
	// shared chain's keep their place.
	st.Components = append(st.Components, routeProcs...)
	st.Ready, st.NotReady = e.readiness(st.Components)
	return st
}

// processorStatus is the status of processor i named by names, if it
// reports one.
func processorStatus(p pipeline.Processor, i int, names []string) (ComponentStatus, bool) {
	r, ok := p.(pipeline.StatusReporter)
	if !ok {
		return ComponentStatus{}, false
	}
	ps := r.Status()
	if i < len(names) {
		ps.Name = names[i]
	}
	if ps.Name == "" {
		ps.Name = fmt.Sprintf("processor-%d", i)
	}
	if ps.State == "" {
		ps.State = pipeline.StateRunning
	}
	return ComponentStatus{Kind: "processor", Status: ps, Up: !pipeline.IsDown(ps.State)}, true
}

func latencyStats(h *latency.Histogram) *LatencyStats {
	return &LatencyStats{
		Count:   h.Count(),
		P50ms:   ms(h.Quantile(0.50)),
		P99ms:   ms(h.Quantile(0.99)),
		Maxms:   ms(h.Max()),
		Buckets: h.Buckets(),
	}
}

// SinkLatency exposes a sink's latency histogram quantile, for the load
// harness. ok is false for an unknown sink.
func (e *Engine) SinkLatency(name string, q float64) (d time.Duration, count uint64, ok bool) {
	for _, s := range e.sinkList() {
		if s.spec.Name == name {
			if q >= 1 {
				return s.latency.Max(), s.latency.Count(), true
			}
			return s.latency.Quantile(q), s.latency.Count(), true
		}
	}
	return 0, 0, false
}

// SinkGatewayLatency is SinkLatency measured from each sample's arrival at
// the gateway (EdgeTime) instead of its source time.
func (e *Engine) SinkGatewayLatency(name string, q float64) (d time.Duration, ok bool) {
	for _, s := range e.sinkList() {
		if s.spec.Name == name {
			if q >= 1 {
				return s.gatewayLatency.Max(), true
			}
			return s.gatewayLatency.Quantile(q), true
		}
	}
	return 0, false
}

func componentStatus(kind, name string, impl any, h *health) ComponentStatus {
	var own pipeline.Status
	if r, ok := impl.(pipeline.StatusReporter); ok {
		own = r.Status()
	}
	state, lastErr, at := h.snapshot()
	cs := ComponentStatus{Kind: kind, Status: own}
	cs.Name = name
	// The engine's view of state wins unless the component is running and
	// has a finer state of its own to report.
	if cs.State == "" || state != pipeline.StateRunning {
		cs.State = state
	}
	switch {
	case own.LastError == "":
		cs.LastError, cs.LastErrorAt = lastErr, at
	case !own.LastErrorAt.IsZero():
	case own.LastError == lastErr:
		cs.LastErrorAt = at
	default:
		cs.LastErrorAt = h.seenOwnError(own.LastError)
	}
	// Up: the engine runs it and neither it nor all of its parts say
	// they are down (a source with one of ten devices offline still
	// delivers; the component's own state is then the worst of them).
	cs.Up = state == pipeline.StateRunning && (!pipeline.IsDown(cs.State) || anyChildUp(own.Children))
	// Copy: the engine adds its own counters and must not write into a map
	// the component may still hold.
	counters := make(map[string]uint64, len(own.Counters)+4)
	for k, v := range own.Counters {
		counters[k] = v
	}
	cs.Counters = counters
	return cs
}

func anyChildUp(children []pipeline.Status) bool {
	for _, c := range children {
		if c.State != "" && !pipeline.IsDown(c.State) {
			return true
		}
	}
	return false
}

// readiness applies the rule of the package doc: ready while the engine
// runs, at least one source is up (if there are any) and at least one sink
// is up (if there are any). The reasons name the components that are down.
func (e *Engine) readiness(cs []ComponentStatus) (bool, []string) {
	if !e.ready.Load() {
		return false, []string{"engine is not running"}
	}
	var reasons []string
	for _, kind := range []string{"source", "sink"} {
		var down []string
		total, up := 0, 0
		for _, c := range cs {
			if c.Kind != kind {
				continue
			}
			total++
			if c.Up {
				up++
				continue
			}
			d := kind + " " + c.Name + " is " + c.State
			if c.LastError != "" {
				d += " (" + c.LastError + ")"
			}
			down = append(down, d)
		}
		if total > 0 && up == 0 {
			reasons = append(reasons, fmt.Sprintf("every %s is down: %s", kind, strings.Join(down, "; ")))
		}
	}
	return len(reasons) == 0, reasons
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ResetLatency clears every sink's latency histogram, so a measurement can
// leave out the warm-up.
func (e *Engine) ResetLatency() {
	for _, s := range e.sinkList() {
		s.latency.Reset()
		s.gatewayLatency.Reset()
	}
}

// sinkList is the current sinks, for readers outside the push path.
func (e *Engine) sinkList() []*sinkRunner {
	e.graphMu.RLock()
	defer e.graphMu.RUnlock()
	return e.sinks
}
