package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/fleet/hub"
	"github.com/weir-edge/weir/gateway"
)

// Actors the agent's applies are audited as (config.applied).
const (
	actorVersion   = "fleet:v"          // + version
	actorRollback  = "fleet:rollback:v" // + the version rolled back
	actorKnownGood = "fleet:known-good:v"
)

// applyLoop applies what the hub sends, one version at a time. It starts
// by putting the known-good bundle back if the gateway runs something
// else (the site restarted, perhaps without its hub).
func (a *Agent) applyLoop(ctx context.Context) {
	a.startKnownGood(ctx)
	for {
		var batch []item
		select {
		case <-ctx.Done():
			return
		case it := <-a.inbox:
			batch = append(batch, it)
		}
		// Everything already waiting: only the newest valid version of it
		// is applied.
		for more := true; more; {
			select {
			case it := <-a.inbox:
				batch = append(batch, it)
			default:
				more = false
			}
		}
		a.handle(ctx, batch)
	}
}

// startKnownGood applies the last known-good bundle when the gateway
// runs another text (it started from its own file).
func (a *Agent) startKnownGood(ctx context.Context) {
	cur := a.opts.Store.Current()
	if cur == nil {
		return
	}
	text, err := a.resolve(cur)
	if err == nil && sha256Hex(text) != sha256Hex(a.opts.Target.Running()) {
		err = a.opts.Target.Apply(ctx, text, actorKnownGood+strconv.FormatUint(cur.Version, 10))
		if err == nil {
			a.log.Info("running the last known-good configuration", "version", cur.Version)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("the last known-good configuration does not apply; the site runs its own file", "version", cur.Version, "err", err)
		}
		return
	}
	a.mu.Lock()
	a.appliedSHA = sha256Hex(text)
	a.mu.Unlock()
	signal(a.changed)
}

// handle applies the key rotations of batch in order, then the newest
// valid bundle of it; every refusal is reported. Rotations go first: a
// bundle signed by a new key may arrive before the statement adding it
// (they travel by different subjects), and one signed by a key the site
// does not know yet makes it ask the hub again, once per version.
func (a *Agent) handle(ctx context.Context, batch []item) {
	for _, it := range batch {
		if it.rotation {
			a.rotate(it)
		}
	}
	var best *bundle.Bundle
	for _, it := range batch {
		if it.rotation {
			continue
		}
		b, err := bundle.Decode(it.data)
		if err == nil {
			err = a.opts.Store.Check(b)
		}
		switch {
		case err == nil:
		case errors.Is(err, bundle.ErrAlreadyApplied):
			continue // sent again at a reconnect: nothing to do
		case errors.Is(err, bundle.ErrUnknownKey) && a.reasked != b.Version:
			a.reasked = b.Version
			a.log.Info("bundle signed by a key not known yet: asking the hub for its key rotations", "version", b.Version)
			signal(a.connected)
			a.refuse(b, err)
			continue
		default:
			a.refuse(b, err)
			continue
		}
		a.mu.Lock()
		failed := a.failed
		if b.Version > a.desired.Version {
			a.desired = Version{Version: b.Version, Hash: hexHash(b.Hash)}
		}
		a.mu.Unlock()
		if failed.Version == b.Version && failed.Hash == hexHash(b.Hash) {
			continue // rolled back once already: not tried again
		}
		if best == nil || b.Version > best.Version {
			best = b
		}
	}
	if best != nil {
		a.apply(ctx, best)
	}
}

// rotate applies one key rotation statement; one the site already
// follows (sent again at a reconnect) is skipped quietly.
func (a *Agent) rotate(it item) {
	r, err := bundle.DecodeRotation(it.data)
	if err == nil {
		for _, k := range a.opts.Store.Keys() {
			if k.ID == r.KeyID && (r.Action == bundle.ActionAdd || k.Retired) {
				return
			}
		}
		err = a.opts.Store.Rotate(r)
	}
	if err != nil {
		a.log.Warn("key rotation refused", "from", it.from, "err", err)
		a.setRefused(&Event{Reason: "key rotation refused: " + err.Error(), At: a.opts.Now()})
		return
	}
	a.log.Info("hub key rotation applied", "action", r.Action, "key", r.KeyID)
}

func (a *Agent) refuse(b *bundle.Bundle, err error) {
	ev := &Event{Reason: "refused: " + short(err.Error()), At: a.opts.Now()}
	if b != nil {
		ev.Version, ev.Hash = b.Version, hexHash(b.Hash)
	}
	a.log.Warn("bundle refused", "version", ev.Version, "err", err)
	a.setRefused(ev)
}

func (a *Agent) setRefused(ev *Event) {
	a.mu.Lock()
	a.refused = ev
	a.mu.Unlock()
	signal(a.changed)
}

// errUnhealthy is a version that applied but did not keep the site
// healthy through its dwell.
var errUnhealthy = errors.New("unhealthy after the dwell")

// apply takes b through the store: resolve secrets, hot reload, dwell;
// the store keeps b as known-good only if all of it succeeds. Otherwise
// the configuration that ran before is put back and the reason reported.
func (a *Agent) apply(ctx context.Context, b *bundle.Bundle) {
	var prev, text []byte
	activated := false
	err := a.opts.Store.Apply(b, func(b *bundle.Bundle) error {
		var err error
		if text, err = a.resolve(b); err != nil {
			return err
		}
		prev = a.opts.Target.Running()
		before := a.opts.Target.State()
		a.mu.Lock()
		a.applying = true
		a.mu.Unlock()
		signal(a.changed)
		a.log.Info("applying version", "version", b.Version, "dwell", a.opts.Dwell)
		if err := a.opts.Target.Apply(ctx, text, actorVersion+strconv.FormatUint(b.Version, 10)); err != nil {
			a.restore(ctx, b, prev)
			return err
		}
		t := time.NewTimer(a.opts.Dwell)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err() // stopping: not known-good; asked again at start
		case <-t.C:
		}
		if why := judge(before, a.opts.Target.State(), a.opts.Dwell, a.opts.MaxErrorRate); why != "" {
			a.restore(ctx, b, prev)
			return fmt.Errorf("%w: %s", errUnhealthy, why)
		}
		activated = true
		return nil
	})
	if err != nil && activated {
		// Healthy, but not saved as known-good (the disk): the site must
		// not run what it could not start again on.
		a.restore(ctx, b, prev)
	}
	a.mu.Lock()
	defer signal(a.changed)
	defer a.mu.Unlock()
	// Applying ends with the bookkeeping, so no report sees the new text
	// running before it is the applied one (that would read as drift).
	a.applying = false
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		a.failed = Version{Version: b.Version, Hash: hexHash(b.Hash)}
		a.rollback = &Event{Version: b.Version, Hash: hexHash(b.Hash), Reason: short(err.Error()), At: a.opts.Now()}
		a.log.Error("version rolled back; the site runs its known-good configuration", "version", b.Version, "err", err)
		return
	}
	a.applied = Version{Version: b.Version, Hash: hexHash(b.Hash)}
	a.appliedSHA = sha256Hex(text)
	a.log.Info("version applied and healthy: now known-good", "version", b.Version)
	if a.opts.Secrets != nil {
		// Secret files the running version no longer names go.
		if err := a.opts.Secrets.Prune(text); err != nil {
			a.log.Warn("resolved secrets not pruned", "err", err)
		}
	}
}

// restore puts prev back if the gateway no longer runs it (a partial
// apply, or a version that applied and turned out unhealthy).
func (a *Agent) restore(ctx context.Context, b *bundle.Bundle, prev []byte) {
	if bytes.Equal(a.opts.Target.Running(), prev) || prev == nil {
		return
	}
	if err := a.opts.Target.Apply(context.WithoutCancel(ctx), prev, actorRollback+strconv.FormatUint(b.Version, 10)); err != nil {
		a.log.Error("rolling back: the previous configuration did not apply again", "version", b.Version, "err", err)
	}
}

// resolve turns the bundle's fleet secret references into what the
// gateway reads; without SiteSecrets a reference is an error.
func (a *Agent) resolve(b *bundle.Bundle) ([]byte, error) {
	s := a.opts.Secrets
	if s == nil {
		s = &bundle.SiteSecrets{Lookup: func(string) (string, bool) { return "", false }}
	}
	return s.Resolve(b.Config)
}

// judge says why after (the end of a dwell) is unhealthy compared with
// before (just before the apply), or "" when healthy: a source or sink
// down that was up before or is new, the sinks' buffers growing, new
// high-priority alarms, sink write errors above maxRate a second. What was
// already down before the change is not blamed on it.
func judge(before, after gateway.FleetState, dwell time.Duration, maxRate float64) string {
	was := map[string]bool{}
	var depth0, depth1 int
	var errs0, errs1 uint64
	for _, c := range before.Status.Components {
		was[c.Kind+"/"+c.Name] = c.Up
		if c.Kind == "sink" {
			errs0 += c.Counters["write_errors"]
			if c.Buffer != nil {
				depth0 += c.Buffer.Depth
			}
		}
	}
	for _, c := range after.Status.Components {
		if c.Kind != "source" && c.Kind != "sink" {
			continue
		}
		up, known := was[c.Kind+"/"+c.Name]
		if !c.Up && (up || !known) {
			why := fmt.Sprintf("%s %q is not connected after the %s dwell", c.Kind, c.Name, dwell)
			if c.LastError != "" {
				why += ": " + c.LastError
			}
			return why
		}
		if c.Kind == "sink" {
			errs1 += c.Counters["write_errors"]
			if c.Buffer != nil {
				depth1 += c.Buffer.Depth
			}
		}
	}
	if grow := depth1 - depth0; grow > max(1000, depth0/2) {
		return fmt.Sprintf("the sinks' buffers grew by %d samples during the %s dwell (from %d to %d)", grow, dwell, depth0, depth1)
	}
	if after.HighAlarms > before.HighAlarms {
		return fmt.Sprintf("%d new high-priority alarms during the %s dwell", after.HighAlarms-before.HighAlarms, dwell)
	}
	if errs1 > errs0 {
		if rate := float64(errs1-errs0) / dwell.Seconds(); rate > maxRate {
			return fmt.Sprintf("%d sink write errors during the %s dwell (%.1f/s, bound %.1f/s)", errs1-errs0, dwell, rate, maxRate)
		}
	}
	return ""
}

// splitRotations reads the reply of weir.hub.trust (hub.TrustReply: the
// encoded rotation statements, base64, oldest first); what does not
// decode is passed on as it is, to be refused and reported.
func splitRotations(data []byte) [][]byte {
	var r hub.TrustReply
	if err := json.Unmarshal(data, &r); err != nil {
		return [][]byte{data}
	}
	out := make([][]byte, 0, len(r.Rotations))
	for _, s := range r.Rotations {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			raw = []byte(s)
		}
		out = append(out, raw)
	}
	return out
}
