package gateway

import (
	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/pipeline"
)

// withAuditStatus adds the audit trail to the engine's /status as a
// component of kind "audit": a trail that could not be opened (or broke
// while running) shows failed with its reason, while the data path goes
// on. It does not change readiness: data still flows. Its counters are
// left out here, as the api exports them as weir_audit_* already.
type withAuditStatus struct {
	eng   *engine.Engine
	trail *audit.Log
}

func (w withAuditStatus) Status() engine.Status {
	st := w.eng.Status()
	ts := w.trail.Status()
	ts.Name, ts.Counters, ts.Gauges = "audit", nil, nil
	st.Components = append(st.Components, engine.ComponentStatus{Kind: "audit", Status: ts, Up: !pipeline.IsDown(ts.State)})
	return st
}
