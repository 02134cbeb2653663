package gateway

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/security"
)

// FleetState is what the fleet's site agent (fleet/agent) reads of a
// running gateway to report its health to the hub and to judge a new
// version during its dwell: one snapshot, cheap enough for every second.
type FleetState struct {
	// ConfigSHA256 is the SHA-256 (hex) of the text that runs: the
	// effective configuration, whoever applied it.
	ConfigSHA256 string
	// Status is /status: sources, sinks with their buffers, the audit trail.
	Status engine.Status
	// HighAlarms counts active alarms of priority high or critical.
	HighAlarms int
	// WriteDenials counts writes the write gate refused since start.
	WriteDenials uint64
	// AuditCheckpoints counts checkpoints the audit trail has taken; AuditErr
	// is its failure, if it has one.
	AuditCheckpoints uint64
	AuditErr         string
	// CertNotAfter is when the API's TLS certificate expires; zero
	// without TLS.
	CertNotAfter time.Time
}

// FleetState snapshots the gateway for the site agent. Safe at any time.
func (g *Gateway) FleetState() FleetState {
	g.mu.Lock()
	sha := g.run.sha256
	g.mu.Unlock()
	st := FleetState{ConfigSHA256: sha, Status: withAuditStatus{g.eng, g.trail}.Status(),
		WriteDenials: g.writeDenials.Load()}
	for _, a := range g.mgr.List() {
		if a.State.Active() && (a.Priority == alarms.High || a.Priority == alarms.Critical) {
			st.HighAlarms++
		}
	}
	as := g.trail.Stats()
	st.AuditCheckpoints = as.Checkpoints
	if err := g.trail.Err(); err != nil {
		st.AuditErr = err.Error()
	}
	if g.served.tls != nil {
		st.CertNotAfter = g.served.tls.Leaf().NotAfter
	}
	return st
}

// WaitRunning blocks until Run has started the engine (Apply works from
// then on) or ctx ends: the site agent applies its last known-good
// configuration as soon as it may.
func (g *Gateway) WaitRunning(ctx context.Context) error {
	select {
	case <-g.runningCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// denialCounter counts the write gate's refusals on their way to the
// security events, for FleetState (the gate keeps no counter of its own).
type denialCounter struct {
	next security.Recorder
	n    *atomic.Uint64
}

func (d denialCounter) Record(ctx context.Context, ev security.Event) {
	if ev.Kind == security.WriteDenied {
		d.n.Add(1)
	}
	d.next.Record(ctx, ev)
}

// RunningText is the exact text of the running configuration, which the
// site agent puts back when a version from the hub fails.
func (g *Gateway) RunningText() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.run.text
}
