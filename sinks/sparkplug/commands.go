package sparkplug

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/writegate"
)

// TrustBrokerACL is the only trust a Sparkplug command can have: Sparkplug
// B carries no sender authentication, so whoever the broker lets publish
// NCMD/DCMD for this node is the commander.
const TrustBrokerACL = "broker_acl"

// CommandsConfig is the sink's `commands:` block: whether NCMD/DCMD writes
// are trusted at all, and as whom they run.
//
//	commands: {trust: broker_acl, caller: scada, role: operator}
//
// Without trust: broker_acl every write command is refused (not passed to
// the write gate), counted as denied and reported as a security event.
// Setting it states that the broker only lets the SCADA host publish
// spBv1.0/<group>/NCMD/<edge node> and .../DCMD/<edge node>/# (see the
// README for the Mosquitto ACL).
type CommandsConfig struct {
	// Trust is "" (refuse every write command) or "broker_acl".
	Trust string `yaml:"trust"`
	// Caller names the commander: writes run as "sparkplug:<caller>".
	// Default: primary_host_id; required when that is unset.
	Caller string `yaml:"caller"`
	// Role is the commander's role (default operator).
	Role security.Role `yaml:"role"`
}

// validate checks the block (keys relative to commands).
func (c *CommandsConfig) validate(primaryHost string) error {
	var errs conf.Errors
	switch c.Trust {
	case "", TrustBrokerACL:
	default:
		errs.Addf("trust", "%q is not a trust (want broker_acl, after restricting NCMD/DCMD publishing with the broker's ACL)", c.Trust)
	}
	if c.Caller != "" {
		if err := cmdproof.ValidName(c.Caller); err != nil {
			errs.Add(conf.Errorf("caller", "%w", err))
		}
	} else if c.Trust != "" && primaryHost == "" {
		errs.Addf("caller", "is required with trust: broker_acl when primary_host_id is unset (who is the commander?)")
	}
	if c.Role != "" {
		if _, err := security.ParseRole(string(c.Role)); err != nil {
			errs.Add(conf.Errorf("role", "%w", err))
		}
	}
	return errs.Err()
}

// commander is the caller and role trusted commands run as; ok is false
// when commands are not trusted.
func (c *Config) commander() (caller string, role security.Role, ok bool) {
	if c.Commands.Trust != TrustBrokerACL {
		return "", "", false
	}
	caller, role = c.Commands.Caller, c.Commands.Role
	if caller == "" {
		caller = c.PrimaryHostID
	}
	if role == "" {
		role = security.Operator
	}
	return "sparkplug:" + caller, role, true
}

// Gate is the write gate as the sink uses it (*writegate.Gate). Writes
// from NCMD/DCMD reach OT only through it.
type Gate interface {
	Write(ctx context.Context, req writegate.Request) (writegate.Result, error)
}

var _ Gate = (*writegate.Gate)(nil)

// cmdQueueSize bounds the commands waiting for the gate. onMessage must
// not block, so a full queue drops the command (counted and logged).
const cmdQueueSize = 64

// commands is the sink's write-command state (see SetWriteGate).
type commands struct {
	gate        atomic.Pointer[gateBox]
	events      atomic.Pointer[recorderBox]
	dcmdTopic   string // spBv1.0/<group>/DCMD/<edge node>/+
	dcmdPrefix  string // spBv1.0/<group>/DCMD/<edge node>/
	ignoredOnce sync.Once

	received, allowed, denied, failed, unknown, dropped atomic.Uint64
}

type gateBox struct{ g Gate }

type recorderBox struct{ r security.Recorder }

// SetRecorder sets where refused and denied write commands are reported
// (default security.Discard). Call it before Connect.
func (s *Sink) SetRecorder(r security.Recorder) {
	if r == nil {
		r = security.Discard
	}
	s.cmd.events.Store(&recorderBox{r: r})
}

func (s *Sink) record(ctx context.Context, ev security.Event) {
	b := s.cmd.events.Load()
	if b == nil {
		return
	}
	ev.Time = time.Now()
	ev.Component = "sparkplug"
	b.r.Record(ctx, ev)
}

// cmdMsg is one decoded NCMD or DCMD waiting for the worker.
type cmdMsg struct {
	device string // "" for NCMD
	p      *sparkplugb.Payload
}

// SetWriteGate makes the edge node listen for writes: DCMD for its
// devices (spBv1.0/<group>/DCMD/<edge node>/+) and NCMD metrics other
// than Node Control/*. With commands.trust: broker_acl each is mapped back
// to the Weir tag path it was published from and passed to g as caller
// "sparkplug:<commands.caller or primary host id>" with commands.role;
// without it every write is refused and reported, never passed to g. Call
// it before Connect; it takes effect on the next connection. Without a
// gate the sink is read-only: NCMD writes are ignored and DCMD is not
// subscribed.
func (s *Sink) SetWriteGate(g Gate) {
	if g == nil {
		s.cmd.gate.Store(nil)
		return
	}
	s.cmd.gate.Store(&gateBox{g: g})
}

// HasWriteGate reports whether the sink takes writes (SetWriteGate gave
// it a gate): the gateway's tests check a reload wires it as at start.
func (s *Sink) HasWriteGate() bool { return s.writeGate() != nil }

func (s *Sink) writeGate() Gate {
	if b := s.cmd.gate.Load(); b != nil {
		return b.g
	}
	return nil
}

// initCommands fills the topics; called by New.
func (s *Sink) initCommands() {
	s.cmd.dcmdPrefix = s.node.topic(sparkplugb.DCMD, "") + "/"
	s.cmd.dcmdTopic = s.cmd.dcmdPrefix + "+"
}

// commandSubscriptions adds the DCMD subscription when a gate is set and
// returns the per-session queue (nil without a gate).
func (s *Sink) commandSubscriptions(subs *[]mqttclient.Subscription) chan cmdMsg {
	if s.writeGate() == nil {
		return nil
	}
	*subs = append(*subs, mqttclient.Subscription{Topic: s.cmd.dcmdTopic, QoS: 1})
	return make(chan cmdMsg, cmdQueueSize)
}

// startCommands runs the session's command worker when it has a queue;
// serve waits for it through sess.cmdDone.
func (s *Sink) startCommands(sess *session) {
	if sess.cmds == nil {
		return
	}
	sess.cmdDone = make(chan struct{})
	go func() {
		defer close(sess.cmdDone)
		for {
			select {
			case <-sess.ctx.Done():
				return
			case m := <-sess.cmds:
				s.execute(sess.ctx, m)
			}
		}
	}()
}

// onNodeCommand handles the metrics of an NCMD that are not Node
// Control/*. It runs in onMessage and does not block.
func (s *Sink) onNodeCommand(sess *session, p *sparkplugb.Payload) {
	writes := false
	for _, m := range p.GetMetrics() {
		if !strings.HasPrefix(m.GetName(), "Node Control/") {
			writes = true
			break
		}
	}
	if !writes {
		return
	}
	s.enqueueCommand(sess, cmdMsg{p: p})
}

// onDeviceCommand handles a DCMD for one of this node's devices.
func (s *Sink) onDeviceCommand(sess *session, topic string, payload []byte) {
	dev := strings.TrimPrefix(topic, s.cmd.dcmdPrefix)
	p, err := sparkplugb.Decode(payload)
	if err != nil {
		s.cmd.received.Add(1)
		s.cmd.denied.Add(1)
		s.log.Warn("ignoring malformed DCMD", "device", dev, "error", err)
		return
	}
	s.enqueueCommand(sess, cmdMsg{device: dev, p: p})
}

func (s *Sink) enqueueCommand(sess *session, m cmdMsg) {
	if sess.cmds == nil || s.writeGate() == nil {
		s.cmd.ignoredOnce.Do(func() {
			s.log.Info("ignoring Sparkplug write commands: no write gate (the sink is read-only)")
		})
		return
	}
	select {
	case sess.cmds <- m:
	default:
		s.cmd.received.Add(uint64(len(m.p.GetMetrics())))
		s.cmd.dropped.Add(uint64(len(m.p.GetMetrics())))
		s.log.Warn("write command dropped: too many waiting", "device", m.device)
	}
}

// cmdTarget is what a command metric resolves to.
type cmdTarget struct {
	path string
	dt   sparkplugb.DataType
}

// lookup maps a command metric to the tag path the sink published it
// from: by name, else by alias, among the metrics of the device (or the
// node). A metric two paths map onto (strip_prefix) is refused as
// ambiguous.
func (s *Sink) lookup(device string, m *sparkplugb.Metric) (cmdTarget, error) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	d := s.node.self
	if device != "" {
		if d = s.node.byID[device]; d == nil {
			return cmdTarget{}, fmt.Errorf("unknown device %q", device)
		}
	}
	var ms *metricState
	for _, x := range d.metrics {
		if (m.Name != nil && x.name == m.GetName()) || (m.Name == nil && m.Alias != nil && x.alias == m.GetAlias()) {
			ms = x
			break
		}
	}
	if ms == nil {
		return cmdTarget{}, fmt.Errorf("unknown metric %s", metricLabel(m))
	}
	var path string
	for p, x := range s.node.byPath {
		if x == ms {
			if path != "" {
				return cmdTarget{}, fmt.Errorf("metric %s is published from more than one tag (%s, %s)", metricLabel(m), path, p)
			}
			path = p
		}
	}
	return cmdTarget{path: path, dt: ms.dt}, nil
}

func metricLabel(m *sparkplugb.Metric) string {
	if m.Name != nil {
		return fmt.Sprintf("%q", m.GetName())
	}
	if m.Alias != nil {
		return fmt.Sprintf("alias %d", m.GetAlias())
	}
	return "without name or alias"
}

// unknownPath names a command metric this node never published, for the
// audit trail: spBv1.0/<group>/<edge node>[/<device>]/<metric or alias-N>.
// No source serves such a path, so the gate always refuses it.
func (s *Sink) unknownPath(device string, m *sparkplugb.Metric) string {
	metric := m.GetName()
	if metric == "" {
		metric = fmt.Sprintf("alias-%d", m.GetAlias())
	}
	return model.JoinPath(sparkplugb.Namespace, s.cfg.GroupID, s.cfg.EdgeNodeID, device, metric)
}

// execute passes every writable metric of one command to the gate.
// Sparkplug has no reply channel: the outcome shows in the next DATA of
// the tag, and in the audit trail.
func (s *Sink) execute(ctx context.Context, c cmdMsg) {
	g := s.writeGate()
	if g == nil {
		return
	}
	kind := "DCMD"
	if c.device == "" {
		kind = "NCMD"
	}
	caller, role, trusted := s.cfg.commander()
	if !trusted {
		s.refuseUntrusted(ctx, kind, c)
		return
	}
	var issued time.Time
	if c.p.Timestamp != nil && c.p.GetTimestamp() > 0 {
		issued = time.UnixMilli(int64(c.p.GetTimestamp()))
	}
	for _, m := range c.p.GetMetrics() {
		if c.device == "" && strings.HasPrefix(m.GetName(), "Node Control/") {
			continue // Rebirth is handled by onMessage
		}
		s.cmd.received.Add(1)
		log := s.log.With("command", kind, "device", c.device, "metric", metricLabel(m))
		// Every attempt goes to the gate, even one this node cannot map or
		// that lacks a timestamp: the gate refuses it and, above all,
		// audits it.
		reason := "Sparkplug " + kind + " " + metricLabel(m)
		var path string
		var v model.Value
		t, err := s.lookup(c.device, m)
		if err != nil {
			s.cmd.unknown.Add(1)
			path = s.unknownPath(c.device, m)
			v, _ = sparkplugb.ValueOf(m)
			reason += ": " + err.Error()
			log.Warn("write command for an unknown metric", "error", err)
		} else {
			path = t.path
			if m.Datatype != nil {
				v, err = sparkplugb.ValueOf(m)
			} else {
				v, err = sparkplugb.ValueAs(m, t.dt)
			}
			if err == nil && !v.IsValid() {
				err = errors.New("command carries no value")
			}
			if err != nil {
				v = model.Value{}
				reason += ": " + err.Error()
			}
		}
		res, err := g.Write(ctx, writegate.Request{Path: path, Value: v, Caller: caller, Role: role, IssuedAt: issued, Reason: reason})
		if err == nil && !v.IsValid() {
			err = errors.New("gate allowed a command without a value") // cannot happen with a real gate
		}
		switch {
		case err == nil:
			s.cmd.allowed.Add(1)
		case errors.Is(err, writegate.ErrDenied):
			s.cmd.denied.Add(1)
			log.Warn("write command denied", "path", t.path, "reason", res.Reason) // the gate reports write.denied
		default:
			s.cmd.failed.Add(1)
			log.Warn("write command failed", "path", t.path, "error", err)
		}
	}
}

// refuseUntrusted refuses every write of a command the configuration does
// not trust (no commands.trust): counted as denied, logged once per
// command and reported per metric.
func (s *Sink) refuseUntrusted(ctx context.Context, kind string, c cmdMsg) {
	topic := s.node.topic(sparkplugb.NCMD, "")
	if c.device != "" {
		topic = s.cmd.dcmdPrefix + c.device
	}
	n := 0
	for _, m := range c.p.GetMetrics() {
		if c.device == "" && strings.HasPrefix(m.GetName(), "Node Control/") {
			continue
		}
		n++
		s.record(ctx, security.Event{Kind: security.RequestRefused, Severity: security.SeverityWarning,
			Actor: "sparkplug:" + kind, Object: topic, Outcome: "refused",
			Detail: "Sparkplug " + kind + " " + metricLabel(m) + " refused: commands are not trusted (set commands.trust: broker_acl once the broker's ACL restricts who may publish " + kind + ")"})
		// Counted after the event is recorded: tests wait on the counter.
		s.cmd.received.Add(1)
		s.cmd.denied.Add(1)
	}
	s.log.Warn("Sparkplug write command refused: commands.trust is not set (Sparkplug commands carry no proof of sender; restrict NCMD/DCMD publishing with the broker's ACL, then set commands.trust: broker_acl)",
		"command", kind, "device", c.device, "metrics", n)
}

// commandCounters adds the write-command counters to a status.
func (s *Sink) commandCounters(c map[string]uint64) {
	c["write_commands"] = s.cmd.received.Load()
	c["write_commands_allowed"] = s.cmd.allowed.Load()
	c["write_commands_denied"] = s.cmd.denied.Load()
	c["write_commands_failed"] = s.cmd.failed.Load()
	c["write_commands_unknown"] = s.cmd.unknown.Load()
	c["write_commands_dropped"] = s.cmd.dropped.Load()
}
