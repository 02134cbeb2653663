package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/rules"
	"github.com/weir-edge/weir/writegate/mqttcmd"
)

// runnerDrainTimeout bounds how long a reload that replaces the rule
// action runner lets the old one finish the actions queued before the
// cut (each is bounded by its own write or HTTP timeout as well).
const runnerDrainTimeout = 10 * time.Second

// taskStopTimeout bounds how long a reload waits for a replaced MQTT
// command subscriber to stop.
const taskStopTimeout = 30 * time.Second

// task is a part of the gateway that a reload may replace alone (the
// MQTT command subscribers): it runs in its own goroutine under Run's
// context, with its own cancel.
type task struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startTask runs run under Run's context until stopped; an error other
// than cancellation ends the gateway, as for the parts Run starts.
func (g *Gateway) startTask(run func(context.Context) error) *task {
	ctx, cancel := context.WithCancel(g.runCtx)
	t := &task{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			select {
			case g.taskErr <- err:
			default:
			}
		}
	}()
	return t
}

// stop cancels t and waits, bounded by ctx, for it to return.
func (t *task) stop(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.cancel()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// livePlan is what an apply builds before the engine's cut and commits
// (or drops) after it.
type livePlan struct {
	runner *rules.Runner // a new rule action runner, started; nil: keep
	// handedOver maps alarms moved to another (or renamed) rule to the
	// rule that defined them before, to undo on failure.
	handedOver map[string]string
	mgr        *alarms.Manager
}

// prepareLive builds and starts what must exist before the new chain is
// built: a rule action runner for changed rule_actions (the new rules
// enqueue to it).
func (g *Gateway) prepareLive(cfg *config.Config, d config.Diff) (*livePlan, error) {
	p := &livePlan{mgr: g.mgr}
	if d.Processors {
		// An alarm action moved to another or a renamed rule: hand the
		// alarm, with its state, to the new rule before it defines it.
		owners := g.mgr.RuleAlarms()
		for name, rule := range ruleAlarmNames(cfg) {
			if was, ok := owners[name]; ok && was != rule {
				if p.handedOver == nil {
					p.handedOver = map[string]string{}
				}
				p.handedOver[name] = was
				g.mgr.HandOver(name, rule)
			}
		}
	}
	if !slices.Contains(d.Live, "rule_actions") {
		return p, nil
	}
	r, err := rules.NewRunner(cfg.Rules.Actions, g.gate, g.log.With("component", "rule_actions"))
	if err != nil {
		p.abort()
		return nil, err
	}
	if err := r.Start(g.runCtx); err != nil {
		r.Close()
		p.abort()
		return nil, err
	}
	p.runner = r
	return p, nil
}

// abort drops what prepareLive built (the apply failed).
func (p *livePlan) abort() {
	if p == nil {
		return
	}
	if p.runner != nil {
		p.runner.Close()
	}
	for name, rule := range p.handedOver {
		p.mgr.HandOver(name, rule)
	}
}

// actionRunner is the runner the chain being built enqueues to.
func (g *Gateway) actionRunner(p *livePlan) *rules.Runner {
	if p != nil && p.runner != nil {
		return p.runner
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.runner
}

// commitLive applies the live keys once the engine runs the new chain:
// the old action runner drains, alarms no rule defines any more are
// retired, and the alarm manager, write limits, write policies, command
// subscribers and the security event stream take their new blocks.
func (g *Gateway) commitLive(ctx context.Context, old, cfg *config.Config, d config.Diff, p *livePlan) error {
	var errs []error
	if p.runner != nil {
		g.mu.Lock()
		prev := g.runner
		g.runner = p.runner
		g.mu.Unlock()
		dctx, cancel := context.WithTimeout(ctx, runnerDrainTimeout)
		prev.Drain(dctx)
		cancel()
	}
	if d.Processors {
		g.retireAlarms(cfg)
	}
	live := func(k string) bool { return slices.Contains(d.Live, k) }
	if live("alarms") {
		if err := g.mgr.SetConfig(cfg.Alarms); err != nil {
			errs = append(errs, err)
		}
		if !reflect.DeepEqual(old.Alarms.Commands, cfg.Alarms.Commands) ||
			(cfg.Alarms.Commands != nil && old.Alarms.Prefix != cfg.Alarms.Prefix) {
			errs = append(errs, g.restartAlarmCommands(ctx, cfg))
		}
	}
	if live("write_policies") {
		errs = append(errs, g.gate.SetPolicies(cfg.WriteGate.Policies))
	}
	if live("write_limits") {
		errs = append(errs, g.gate.SetLimits(cfg.WriteGate.Limits))
	}
	if live("write_commands") {
		errs = append(errs, g.restartWriteCommands(ctx, cfg))
	}
	if live("security_events") && reflect.DeepEqual(old.SecurityEvents.Syslog, cfg.SecurityEvents.Syslog) {
		errs = append(errs, g.secStream.SetConfig(cfg.SecurityEvents))
	}
	return errors.Join(errs...)
}

// retireAlarms un-defines the rule alarms cfg's rules no longer define
// (alarms.Manager.Retire: an active one is cleared with a reason, an
// unacknowledged one stays until acknowledged).
func (g *Gateway) retireAlarms(cfg *config.Config) {
	defined := ruleAlarmNames(cfg)
	var gone []string
	for name := range g.mgr.RuleAlarms() {
		if _, ok := defined[name]; !ok {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		g.mgr.Retire(gone, time.Now())
	}
}

// restartWriteCommands replaces the MQTT write command subscriber: the
// old one stops (its session ends), the new one, if configured, starts.
func (g *Gateway) restartWriteCommands(ctx context.Context, cfg *config.Config) error {
	var next *mqttcmd.Commands
	if c := cfg.WriteCommands; c != nil {
		var err error
		if next, err = mqttcmd.New(*c, g.gate, g.events, g.log.With("component", "write_commands")); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, taskStopTimeout)
	defer cancel()
	g.mu.Lock()
	prev := g.writeTask
	g.writeTask, g.writeCmds = nil, next
	g.mu.Unlock()
	if err := prev.stop(sctx); err != nil {
		return fmt.Errorf("write_commands: old subscriber did not stop: %w", err)
	}
	if next != nil {
		t := g.startTask(next.Run)
		g.mu.Lock()
		g.writeTask = t
		g.mu.Unlock()
	}
	return nil
}

// restartAlarmCommands replaces the MQTT alarm command subscriber.
func (g *Gateway) restartAlarmCommands(ctx context.Context, cfg *config.Config) error {
	var next *alarms.Commands
	if c := cfg.Alarms.Commands; c != nil {
		var err error
		if next, err = alarms.NewCommands(*c, g.mgr, g.events, g.log.With("component", "alarm_commands")); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, taskStopTimeout)
	defer cancel()
	g.mu.Lock()
	prev := g.alarmTask
	g.alarmTask, g.alarmCmds = nil, next
	g.mu.Unlock()
	if err := prev.stop(sctx); err != nil {
		return fmt.Errorf("alarms.commands: old subscriber did not stop: %w", err)
	}
	if next != nil {
		t := g.startTask(next.Run)
		g.mu.Lock()
		g.alarmTask = t
		g.mu.Unlock()
	}
	return nil
}

// stopTasks stops the replaceable parts at the end of Run.
func (g *Gateway) stopTasks() {
	g.mu.Lock()
	ts := []*task{g.writeTask, g.alarmTask}
	g.mu.Unlock()
	for _, t := range ts {
		_ = t.stop(context.Background()) // they return once cancelled
	}
}

// restartKeys are the changed keys this gateway does not apply live:
// config.Compare's restart keys, plus the parts of live blocks that live
// as long as the process (the alarm state file is read once at start;
// the syslog sender holds its connection and queue).
func restartKeys(d config.Diff, old, cfg *config.Config) []string {
	out := slices.Clone(d.Restart)
	if slices.Contains(d.Live, "alarms") && old.Alarms.StateFile != cfg.Alarms.StateFile {
		out = append(out, "alarms.state_file")
	}
	if slices.Contains(d.Live, "security_events") && !reflect.DeepEqual(old.SecurityEvents.Syslog, cfg.SecurityEvents.Syslog) {
		out = append(out, "security_events.syslog")
	}
	slices.Sort(out)
	return out
}

// sparkplugRewire adds to d, as changed with their buffer kept, the
// Sparkplug sinks a reload leaves alone when write_policies go from none
// to some or back: a sink takes the write gate (and subscribes DCMD) only
// when built, so it is rebuilt to be wired as at start.
func sparkplugRewire(d *config.Diff, old, cfg *config.Config) {
	if (len(old.WriteGate.Policies) == 0) == (len(cfg.WriteGate.Policies) == 0) {
		return
	}
	for _, s := range cfg.Sinks {
		if s.Sparkplug == nil || slices.Contains(d.Sinks.Added, s.Name) || slices.Contains(d.Sinks.Changed, s.Name) {
			continue
		}
		d.Sinks.Changed = append(d.Sinks.Changed, s.Name)
		d.KeepBuffers = append(d.KeepBuffers, s.Name)
	}
	slices.Sort(d.Sinks.Changed)
	slices.Sort(d.KeepBuffers)
}

// ruleAlarmNames maps every alarm cfg's rules define to its rule.
func ruleAlarmNames(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for _, r := range cfg.Rules.Rules {
		for _, a := range slices.Concat(r.Actions, r.OnClear) {
			if a.Alarm != nil {
				out[a.Alarm.Name] = r.Name
			}
		}
	}
	return out
}
