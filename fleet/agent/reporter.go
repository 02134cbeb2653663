package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Snapshot makes the report the agent would publish now (with the
// sequence number the next one sent gets).
func (a *Agent) Snapshot() Report {
	st := a.opts.Target.State()
	now := a.opts.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	r := Report{Schema: ReportSchema, Site: a.opts.Site, Time: now.UTC(), Seq: a.seq + 1,
		Desired: a.desired, Applied: a.applied, Effective: Version{Hash: st.ConfigSHA256},
		Rollback: a.rollback, Refused: a.refused, Health: healthOf(st, now)}
	inSync := a.appliedSHA != "" && st.ConfigSHA256 == a.appliedSHA
	if inSync {
		r.Effective.Version = a.applied.Version
	}
	switch {
	case a.applying:
		r.State = StateApplying
	case a.appliedSHA != "" && !inSync:
		r.Drift, r.State = true, StateDrift
	case a.applied.Version == 0 && a.rollback == nil:
		r.State = StateNoVersion
	case a.rollback != nil && a.rollback.Version == a.desired.Version:
		r.State = StateRolledBack
	default:
		r.State = StateInSync
	}
	return r
}

// fingerprint is what makes a report "changed": versions, state, drift,
// readiness, the effective hash, the last rollback and refusal.
func fingerprint(r Report) string {
	rb, rf := "", ""
	if r.Rollback != nil {
		rb = r.Rollback.At.String()
	}
	if r.Refused != nil {
		rf = r.Refused.At.String()
	}
	return fmt.Sprint(r.Desired, r.Applied, r.Effective, r.State, r.Drift, r.Health.Ready, r.Health.HighAlarms, rb, rf)
}

// report publishes a report every ReportInterval, and on change (looked
// for every second, at most one a second). Reports that cannot be sent
// (the hub out of reach) are kept, the newest Backlog of them; on return
// the current one goes first, then those kept, oldest first.
func (a *Agent) report(ctx context.Context, nc *nats.Conn) {
	tick := time.NewTicker(minReportGap)
	defer tick.Stop()
	var held []Report
	var last string
	var lastSent time.Time
	send := func(r Report) bool {
		if !nc.IsConnected() {
			return false
		}
		data, err := json.Marshal(r)
		if err != nil {
			a.log.Error("report not encoded", "err", err)
			return true // never sendable: do not hold it
		}
		if err := a.publish(ctx, nc, data); err != nil {
			a.log.Debug("report not acknowledged; held", "err", err)
			return false
		}
		return true
	}
	hold := func(r Report) {
		held = append(held, r)
		if len(held) > a.opts.Backlog {
			held = append(held[:0], held[len(held)-a.opts.Backlog:]...)
		}
		a.held.Store(int64(len(held)))
	}
	pending := false                 // a change or a reconnect waits for the 1/s bound
	soon := time.NewTimer(time.Hour) // fires when that bound allows it
	soon.Stop()
	defer soon.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.changed:
			pending = true
		case <-a.flush:
			pending = true
		case <-tick.C:
		case <-soon.C:
		}
		now := a.opts.Now()
		r := a.Snapshot()
		fp := fingerprint(r)
		pending = pending || fp != last
		since := now.Sub(lastSent)
		if since < a.opts.ReportInterval && (!pending || since < minReportGap) {
			if pending {
				soon.Reset(minReportGap - since)
			}
			continue
		}
		pending = false
		r.Offline = len(held)
		a.mu.Lock()
		a.seq++
		r.Seq = a.seq
		a.mu.Unlock()
		lastSent, last = now, fp
		if !send(r) {
			hold(r)
			continue
		}
		for len(held) > 0 && ctx.Err() == nil {
			if !send(held[0]) {
				break
			}
			held = held[1:]
		}
		a.held.Store(int64(len(held)))
	}
}

// publish sends one report to the stream and waits for its
// acknowledgement: a request on the report subject, which JetStream
// answers (the site needs no JetStream API rights for it).
func (a *Agent) publish(ctx context.Context, nc *nats.Conn, data []byte) error {
	m, err := a.requestData(ctx, nc, a.subjects.report, data)
	if err != nil {
		return err
	}
	var ack struct {
		Stream string `json:"stream"`
		Error  *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &ack); err != nil {
		return fmt.Errorf("report acknowledgement: %w", err)
	}
	if ack.Error != nil {
		return fmt.Errorf("report refused by the stream: %s", ack.Error.Description)
	}
	return nil
}

func (a *Agent) requestData(ctx context.Context, nc *nats.Conn, subject string, data []byte) (*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	return nc.RequestWithContext(ctx, subject, data)
}

// Held is how many reports wait for the hub to be reachable again.
func (a *Agent) Held() int { return int(a.held.Load()) }
