package api

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/secevents"
)

type fakeSecurity struct{ st secevents.Stats }

func (f fakeSecurity) Stats() secevents.Stats { return f.st }

// The security event stream's metrics are exported with their labels,
// documented in the catalogue and clean for promlint; without a stream
// there are none.
func TestSecurityEventMetrics(t *testing.T) {
	src := fakeSecurity{secevents.Stats{
		Events:  map[string]uint64{"auth.login_failed": 7, "write.denied": 2},
		SinksOn: true, DroppedSinks: 1, Filtered: 3,
		Syslog: &secevents.SyslogStats{Sent: 5, Dropped: 4, Failed: 2, Queued: 6, Connected: true},
	}}
	_, body := get(t, New(Options{Status: &fakeStatus{}, SecurityStats: src}).Handler(), "/metrics")
	for _, line := range []string{
		`weir_security_events_total{kind="auth.login_failed"} 7`,
		`weir_security_events_total{kind="write.denied"} 2`,
		`weir_security_events_filtered_total 3`,
		`weir_security_events_dropped_total{target="sinks"} 1`,
		`weir_security_events_dropped_total{target="syslog"} 4`,
		`weir_security_syslog_messages_sent_total 5`,
		`weir_security_syslog_failures_total 2`,
		`weir_security_syslog_queued_events 6`,
		`weir_security_syslog_connected 1`,
	} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("missing %s", line)
		}
	}
	for name, f := range parseExposition(t, strings.NewReader(body)) {
		if !strings.HasPrefix(name, "weir_security_") {
			continue
		}
		if strings.HasPrefix(f.help, "Undocumented") || restates(f.help, name) {
			t.Errorf("%s: HELP %q", name, f.help)
		}
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "weir_security_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}

	_, body = get(t, New(Options{Status: &fakeStatus{}}).Handler(), "/metrics")
	if strings.Contains(body, "weir_security_") {
		t.Error("security metrics without a stream")
	}
}

type fakeAudit struct{ st audit.Stats }

func (f fakeAudit) Stats() audit.Stats { return f.st }

// The audit trail's checkpoint and held-history health is on /metrics,
// documented in the catalogue.
func TestAuditMetrics(t *testing.T) {
	src := fakeAudit{audit.Stats{Checkpoints: 12, CheckpointErrors: 1, HeldFiles: 3, Problems: 2}}
	_, body := get(t, New(Options{Status: &fakeStatus{}, AuditStats: src}).Handler(), "/metrics")
	for _, line := range []string{
		`weir_audit_checkpoints_total 12`,
		`weir_audit_checkpoint_errors_total 1`,
		`weir_audit_problems_total 2`,
		`weir_audit_held_files 3`,
	} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("missing %s", line)
		}
	}
	for name, f := range parseExposition(t, strings.NewReader(body)) {
		if strings.HasPrefix(name, "weir_audit_") && (strings.HasPrefix(f.help, "Undocumented") || restates(f.help, name)) {
			t.Errorf("%s: HELP %q", name, f.help)
		}
	}
}
