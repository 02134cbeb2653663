package alarms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/security"
)

// Actions of an alarm command.
const (
	ActionAck      = "ack"
	ActionShelve   = "shelve"
	ActionUnshelve = "unshelve"
)

// Command is an alarm command: the cmd object of a signed envelope (see
// internal/cmdproof, kind "alarm") on the command topic:
//
//	{"caller": "alice", "cmd": {"name": "filler_overheat", "action": "ack",
//	  "comment": "on it", "issued_at": 1764112800000, "id": "a-17"}, "mac": "…"}
//
// name, issued_at and id are required; action is ack (the default),
// shelve (with "for": a duration such as "30m", at most max_shelve) or
// unshelve. The command runs as "mqtt:<caller>", the caller the MAC
// proves, and needs role operator.
type Command struct {
	ID       string
	Name     string
	Action   string
	Comment  string
	For      time.Duration
	IssuedAt time.Time
}

type wireCommand struct {
	Name     string          `json:"name"`
	Action   string          `json:"action"`
	Comment  string          `json:"comment"`
	For      string          `json:"for"`
	IssuedAt json.RawMessage `json:"issued_at"`
	ID       string          `json:"id"`
}

// Limits of a command.
const (
	maxCommandSize = 16 << 10
	maxComment     = 1024
	// cmdQueueSize bounds the commands waiting for the worker; beyond it
	// a command is refused with a reply.
	cmdQueueSize = 64
)

// DecodeCommand parses and checks one command (the cmd object). On error
// the returned Command holds the id and name when they could be read.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if len(b) > maxCommandSize {
		return c, fmt.Errorf("command is %d bytes, the limit is %d", len(b), maxCommandSize)
	}
	var w wireCommand
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return c, fmt.Errorf("command is not a JSON object {name, action, comment, for, issued_at, id}: %w", err)
	}
	if dec.More() {
		return c, errors.New("command has data after the JSON object")
	}
	if w.ID == "" || len(w.ID) > cmdproof.MaxID {
		return c, fmt.Errorf("command needs an id (1..%d bytes; a nonce, e.g. a UUID)", cmdproof.MaxID)
	}
	c.ID, c.Name, c.Action, c.Comment = w.ID, w.Name, w.Action, w.Comment
	if err := ValidName(w.Name); err != nil {
		return c, err
	}
	if c.Action == "" {
		c.Action = ActionAck
	}
	switch c.Action {
	case ActionShelve:
		d, err := time.ParseDuration(w.For)
		if err != nil || d <= 0 {
			return c, errors.New(`shelve needs "for": a positive duration such as "30m"`)
		}
		c.For = d
	case ActionAck, ActionUnshelve:
		if w.For != "" {
			return c, fmt.Errorf(`"for" belongs to shelve, not %s`, c.Action)
		}
	default:
		return c, errors.New("action must be ack, shelve or unshelve")
	}
	if len(w.Comment) > maxComment {
		return c, fmt.Errorf("comment is longer than %d bytes", maxComment)
	}
	t, err := cmdproof.ParseIssuedAt(w.IssuedAt)
	if err != nil {
		return c, err
	}
	c.IssuedAt = t
	return c, nil
}

// Reply is the JSON published on <topic>/result for every command.
// Result is "ok", "refused" (no valid proof, stale, replayed, role, or
// malformed) or "failed" (the alarm refused the transition).
type Reply struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Action string `json:"action"`
	Result string `json:"result"`
	Reason string `json:"reason"`
}

// Commands subscribes to the MQTT alarm command topic, checks each
// command's proof of sender, freshness and role (operator), applies it
// to the Manager and publishes the outcome on <topic>/result. It
// reconnects on its own, with backoff and jitter.
type Commands struct {
	cfg    CommandsConfig
	broker mqttclient.Broker // cfg's endpoint, defaults applied
	topic  string
	m      *Manager
	proof  *cmdproof.Verifier
	events security.Recorder
	log    *slog.Logger
	now    func() time.Time

	state                                      atomic.Pointer[string]
	received, acked, rejected, refused, failed atomic.Uint64
	lastRefusalLog                             atomic.Int64  // unix ns, rate-limits refusal logs
	subscribed                                 chan struct{} // closed on the first subscription (tests)
	subscribedOnce                             atomic.Bool
}

var _ pipeline.StatusReporter = (*Commands)(nil)

// NewCommands checks cfg, reads the callers' keys and builds the
// subscriber; nothing connects before Run. Commands, refusals and role
// failures are recorded on events (nil: security.Discard).
func NewCommands(cfg CommandsConfig, m *Manager, events security.Recorder, log *slog.Logger) (*Commands, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alarms: commands: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if events == nil {
		events = security.Discard
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	v, err := cmdproof.NewVerifier(cfg.Proof, cmdproof.KindAlarm)
	if err != nil {
		return nil, fmt.Errorf("alarms: commands: %w", err)
	}
	c := &Commands{cfg: cfg, broker: cfg.Broker(), topic: cfg.Topic, m: m, proof: v, events: events, log: log,
		now: time.Now, subscribed: make(chan struct{})}
	if c.topic == "" {
		c.topic = m.Prefix() + "/_commands/alarms/ack"
	}
	st := pipeline.StateStarting
	c.state.Store(&st)
	return c, nil
}

// Topic is the subscribed topic.
func (c *Commands) Topic() string { return c.topic }

// ResultTopic is where outcomes are published.
func (c *Commands) ResultTopic() string { return c.topic + "/result" }

// Subscribed is closed once the first subscription is in place.
func (c *Commands) Subscribed() <-chan struct{} { return c.subscribed }

func (c *Commands) setState(s string) { c.state.Store(&s) }

// Run connects, subscribes and serves commands until ctx is done,
// reconnecting with backoff after a failure. It returns nil at shutdown.
func (c *Commands) Run(ctx context.Context) error {
	backoff.Loop(ctx, backoff.Policy{}, func(ctx context.Context, b *backoff.Backoff) error {
		c.setState(pipeline.StateConnecting)
		return c.session(ctx, b)
	}, func(err error, d time.Duration) {
		c.setState(pipeline.StateRetrying)
		c.log.Warn("alarm command subscription down; retrying", "err", err, "in", d)
	})
	c.setState(pipeline.StateStopped)
	return nil
}

// session is one connection: connect, subscribe, serve until it is lost
// or ctx ends. One worker per session drains the bounded queue, so the
// message handler never blocks and replies are published off it.
func (c *Commands) session(ctx context.Context, b *backoff.Backoff) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	subs := []mqttclient.Subscription{{Topic: c.proof.Filter(c.topic), QoS: 1}}
	return mqttclient.Serve(ctx, &c.broker, subs, func(sctx context.Context, cli mqttclient.Conn) func(mqttclient.Message) {
		queue := cmdproof.NewLanes[mqttclient.Message](cmdQueueSize)
		wg.Go(func() { queue.Work(sctx, func(m mqttclient.Message) { c.handle(sctx, cli, m.Topic, m.Payload) }) })
		return func(m mqttclient.Message) {
			c.received.Add(1)
			// Signed commands have their own lane, so a flood of forged
			// ones cannot delay an operator's acknowledgement.
			_, _, err := c.proof.OpenMessage(c.topic, m.Topic, m.Payload)
			if queue.Offer(err == nil, m) {
				return
			}
			c.rejected.Add(1)
			if err == nil {
				c.reply(sctx, cli, Reply{Result: "refused", Reason: "refused: busy"})
			}
		}
	}, func() {
		b.Reset()
		c.setState(pipeline.StateRunning)
		c.log.Info("alarm commands subscribed", "topic", c.proof.Filter(c.topic), "results", c.ResultTopic())
		if c.subscribedOnce.CompareAndSwap(false, true) {
			close(c.subscribed)
		}
	})
}

// handle checks one command and applies it.
func (c *Commands) handle(ctx context.Context, cli mqttclient.Conn, topic string, payload []byte) {
	now := c.now()
	who, raw, err := c.proof.OpenMessage(c.topic, topic, payload)
	if err != nil {
		c.refuse(ctx, cli, Command{}, err)
		return
	}
	cmd, err := DecodeCommand(raw)
	if err != nil {
		c.refuse(ctx, cli, cmd, &cmdproof.Refusal{Kind: security.RequestRefused, Short: "malformed", Claimed: who.Name,
			Detail: "malformed command: " + err.Error()})
		return
	}
	if err := c.proof.Fresh(who, cmd.ID, cmd.IssuedAt, now); err != nil {
		c.refuse(ctx, cli, cmd, err)
		return
	}
	if err := cmdproof.Authorize(who, security.Operator); err != nil {
		c.refuse(ctx, cli, cmd, err)
		return
	}
	user := "mqtt:" + who.Name
	switch cmd.Action {
	case ActionShelve:
		_, err = c.m.ShelveFor(cmd.Name, user, cmd.Comment, cmd.For)
	case ActionUnshelve:
		_, err = c.m.Unshelve(cmd.Name, user, cmd.Comment)
	default:
		_, err = c.m.Acknowledge(cmd.Name, user, cmd.Comment)
	}
	ev := security.Event{Kind: security.AlarmCommand, Severity: security.SeverityNotice, Actor: user, Object: cmd.Name,
		Outcome: "ok", Detail: cmd.Action}
	r := Reply{ID: cmd.ID, Name: cmd.Name, Action: cmd.Action, Result: "ok"}
	if err != nil {
		c.failed.Add(1)
		c.rejected.Add(1)
		ev.Outcome, ev.Severity, ev.Detail = "failed", security.SeverityWarning, cmd.Action+": "+err.Error()
		r.Result, r.Reason = "failed", err.Error()
		c.log.Warn("alarm command failed", "topic", c.topic, "caller", who.Name, "alarm", cmd.Name, "action", cmd.Action, "err", err)
	} else {
		c.acked.Add(1)
	}
	c.record(ctx, ev)
	c.reply(ctx, cli, r)
}

// refuse answers a command refused before it reached the Manager:
// "refused: <short reason>" to the sender (the malformed reason in full
// once the proof verified), the detail to the log (rate-limited) and the
// security event.
func (c *Commands) refuse(ctx context.Context, cli mqttclient.Conn, cmd Command, err error) {
	c.refused.Add(1)
	c.rejected.Add(1)
	var r *cmdproof.Refusal
	if !errors.As(err, &r) {
		r = &cmdproof.Refusal{Kind: security.RequestRefused, Short: "malformed", Detail: err.Error()}
	}
	ev := security.Event{Kind: r.Kind, Severity: security.SeverityWarning, Object: c.topic, Outcome: "refused", Detail: r.Detail}
	reason := r.Error()
	switch {
	case r.Kind == security.AccessDenied:
		ev.Actor, ev.Object, ev.Outcome = "mqtt:"+r.Claimed, cmd.Name, "denied"
	case r.Short == "malformed" && r.Claimed != "":
		ev.Actor, reason = "mqtt:"+r.Claimed, r.Detail // verified sender: it may see why
	}
	c.record(ctx, ev)
	if now := time.Now().UnixNano(); now-c.lastRefusalLog.Load() >= int64(10*time.Second) {
		c.lastRefusalLog.Store(now)
		c.log.Warn("alarm command refused (further refusals in the next 10s are only counted)",
			"topic", c.topic, "reason", r.Short, "detail", r.Detail, "refused_total", c.refused.Load())
	}
	c.reply(ctx, cli, Reply{ID: cmd.ID, Name: cmd.Name, Action: cmd.Action, Result: "refused", Reason: reason})
}

func (c *Commands) record(ctx context.Context, ev security.Event) {
	ev.Time = c.now()
	ev.Component = "alarm_commands"
	c.events.Record(ctx, ev)
}

// reply publishes r on the result topic (QoS 1, not retained).
func (c *Commands) reply(ctx context.Context, cli mqttclient.Conn, r Reply) {
	b, err := json.Marshal(r)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
		err = cli.Publish(pctx, c.ResultTopic(), b, 1, false)
		cancel()
	}
	if err != nil {
		c.log.Warn("alarm command result not published", "topic", c.ResultTopic(), "id", r.ID, "err", err)
	}
}

// Status reports the subscription's state and counters.
func (c *Commands) Status() pipeline.Status {
	return pipeline.Status{Name: "alarm_commands", State: *c.state.Load(), Counters: map[string]uint64{
		"received": c.received.Load(), "acked": c.acked.Load(), "rejected": c.rejected.Load(),
		"refused": c.refused.Load(), "failed": c.failed.Load(),
	}}
}
