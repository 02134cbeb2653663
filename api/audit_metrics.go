package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-edge/weir/audit"
)

// AuditSource is what the audit trail reports for metrics; *audit.Log
// implements it.
type AuditSource interface {
	Stats() audit.Stats
}

var _ AuditSource = (*audit.Log)(nil)

// auditCollector exports the trail's checkpoint and rotation health, so a
// monitoring system alarms when checkpoints stop or history is being held
// back because no published checkpoint covers it.
type auditCollector struct{ src AuditSource }

func (auditCollector) Describe(chan<- *prometheus.Desc) {}

func (c auditCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	counter(ch, "weir_audit_checkpoints_total", nil, float64(st.Checkpoints))
	counter(ch, "weir_audit_checkpoint_errors_total", nil, float64(st.CheckpointErrors))
	counter(ch, "weir_audit_problems_total", nil, float64(st.Problems))
	gauge(ch, "weir_audit_held_files", nil, float64(st.HeldFiles))
}
