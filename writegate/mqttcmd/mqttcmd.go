package mqttcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/writegate"
)

// Gate is the write gate as this package uses it (*writegate.Gate).
type Gate interface {
	Write(ctx context.Context, req writegate.Request) (writegate.Result, error)
}

var (
	_ Gate                    = (*writegate.Gate)(nil)
	_ pipeline.StatusReporter = (*Commands)(nil)
)

// queueSize bounds the commands waiting for the gate, in each of two lanes
// (cmdproof.Lanes: signed commands first); beyond it a signed command is
// refused at once (the sender gets a reply) and one without a valid proof
// is dropped and counted, instead of piling up.
const queueSize = 64

// Commands subscribes to the write command topic, checks each command's
// proof of sender (internal/cmdproof), passes it to the gate as caller
// "mqtt:<caller>" with the caller's role and publishes the outcome on
// <topic>/result. Commands are handled one at a time, in arrival order.
// It reconnects on its own, with backoff and jitter.
type Commands struct {
	cfg    Config
	broker mqttclient.Broker // cfg's endpoint, defaults applied
	gate   Gate
	proof  *cmdproof.Verifier
	events security.Recorder
	log    *slog.Logger
	now    func() time.Time

	state                                        atomic.Pointer[string]
	received, allowed, denied, failed, malformed atomic.Uint64
	refused, replyErrors                         atomic.Uint64
	lastRefusalLog                               atomic.Int64  // unix ns, rate-limits refusal logs
	subscribed                                   chan struct{} // closed on the first subscription (tests)
	subscribedOnce                               atomic.Bool
}

// New checks cfg, reads the callers' keys and builds the subscriber;
// nothing connects before Run. Refusals, denied writes and role failures
// are recorded on events (nil: security.Discard).
func New(cfg Config, gate Gate, events security.Recorder, log *slog.Logger) (*Commands, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqttcmd: %w", err)
	}
	if gate == nil {
		return nil, errors.New("mqttcmd: a write gate is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if events == nil {
		events = security.Discard
	}
	cfg.setDefaults()
	v, err := cmdproof.NewVerifier(cfg.Proof, cmdproof.KindWrite)
	if err != nil {
		return nil, fmt.Errorf("mqttcmd: %w", err)
	}
	c := &Commands{cfg: cfg, broker: cfg.Broker(), gate: gate, proof: v, events: events, log: log, now: time.Now, subscribed: make(chan struct{})}
	st := pipeline.StateStarting
	c.state.Store(&st)
	return c, nil
}

// Topic is the subscribed command topic.
func (c *Commands) Topic() string { return c.cfg.Topic }

// ResultTopic is where outcomes are published.
func (c *Commands) ResultTopic() string { return c.cfg.Topic + "/result" }

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
		c.log.Warn("write command subscription down; retrying", "err", err, "in", d)
	})
	c.setState(pipeline.StateStopped)
	return nil
}

// session is one connection: connect, subscribe, serve until it is lost
// or ctx ends. One worker goroutine per session drains the bounded queue.
func (c *Commands) session(ctx context.Context, b *backoff.Backoff) error {
	var wg sync.WaitGroup
	defer wg.Wait() // Serve has ended the worker's context
	subs := []mqttclient.Subscription{{Topic: c.proof.Filter(c.cfg.Topic), QoS: 1}}
	return mqttclient.Serve(ctx, &c.broker, subs, func(sctx context.Context, cli mqttclient.Conn) func(mqttclient.Message) {
		queue := cmdproof.NewLanes[mqttclient.Message](queueSize)
		wg.Go(func() { queue.Work(sctx, func(m mqttclient.Message) { c.handle(sctx, cli, m.Topic, m.Payload) }) })
		return func(msg mqttclient.Message) {
			c.received.Add(1)
			_, _, err := c.proof.OpenMessage(c.cfg.Topic, msg.Topic, msg.Payload)
			if queue.Offer(err == nil, msg) {
				return
			}
			c.denied.Add(1)
			if err != nil {
				// A flood without proof: counted, not answered (a reply
				// per forged message would amplify the flood).
				c.refused.Add(1)
				return
			}
			id, path := peekIDs(msg.Payload)
			c.reply(sctx, cli, Reply{ID: id, Path: path, Result: audit.Denied, Reason: "too many commands waiting; try again"})
		}
	}, func() {
		b.Reset()
		c.setState(pipeline.StateRunning)
		c.log.Info("write commands subscribed", "topic", c.proof.Filter(c.cfg.Topic), "results", c.ResultTopic())
		if c.subscribedOnce.CompareAndSwap(false, true) {
			close(c.subscribed)
		}
	})
}

// peekIDs reads id and path of a command, bare or in an envelope, for a
// reply without decoding it fully; both are "" when they cannot be read.
func peekIDs(p []byte) (id, path string) {
	var w struct {
		ID   string          `json:"id"`
		Path string          `json:"path"`
		Cmd  json.RawMessage `json:"cmd"`
	}
	if len(p) > cmdproof.MaxMessage || json.Unmarshal(p, &w) != nil {
		return "", ""
	}
	if len(w.Cmd) > 0 {
		return peekIDs(w.Cmd)
	}
	if len(w.ID) > maxID || len(w.Path) > maxID*8 {
		return "", ""
	}
	return w.ID, w.Path
}

// handle checks one signed command's proof, freshness and role, passes it
// to the gate and publishes the outcome. Every refusal is replied to with
// a short reason, logged and recorded as a security event.
func (c *Commands) handle(ctx context.Context, cli mqttclient.Conn, topic string, payload []byte) {
	now := c.now()
	who, raw, err := c.proof.OpenMessage(c.cfg.Topic, topic, payload)
	if err != nil {
		c.refuse(ctx, cli, payload, err)
		return
	}
	cmd, err := DecodeCommand(raw)
	if err != nil {
		// Authentic but malformed: the sender may see why.
		c.malformed.Add(1)
		c.denied.Add(1)
		if cmd.ID == "" && cmd.Path == "" {
			cmd.ID, cmd.Path = peekIDs(raw)
		}
		c.record(ctx, security.Event{Kind: security.RequestRefused, Severity: security.SeverityNotice, Actor: "mqtt:" + who.Name,
			Object: c.cfg.Topic, Outcome: "refused", Detail: "malformed command: " + err.Error()})
		c.log.Warn("write command refused", "topic", c.cfg.Topic, "caller", who.Name, "id", cmd.ID, "path", cmd.Path, "err", err)
		c.reply(ctx, cli, Reply{ID: cmd.ID, Path: cmd.Path, Result: audit.Denied, Reason: "malformed command: " + err.Error()})
		return
	}
	if err := c.proof.Fresh(who, cmd.ID, cmd.IssuedAt, now); err != nil {
		c.refuse(ctx, cli, payload, err)
		return
	}
	if err := cmdproof.Authorize(who, security.Operator); err != nil {
		c.refuse(ctx, cli, payload, err)
		return
	}
	cmd.User, cmd.Role = who.Name, who.Role
	// A refusal by the gate is the gate's to report (write.denied, once,
	// for every channel); the command channel reports only its own.
	c.reply(ctx, cli, c.Execute(ctx, cmd))
}

// refuse answers a command refused before the gate: "refused: <short
// reason>" to the sender, the detail to the log (rate-limited: refusals
// are what an attacker can produce at will) and the security event.
func (c *Commands) refuse(ctx context.Context, cli mqttclient.Conn, payload []byte, err error) {
	c.refused.Add(1)
	c.denied.Add(1)
	var r *cmdproof.Refusal
	if !errors.As(err, &r) {
		r = &cmdproof.Refusal{Kind: security.RequestRefused, Short: "malformed", Detail: err.Error()}
	}
	id, path := peekIDs(payload)
	ev := security.Event{Kind: r.Kind, Severity: security.SeverityWarning, Component: "write_commands", Object: c.cfg.Topic,
		Outcome: "refused", Detail: r.Detail}
	if r.Kind == security.AccessDenied {
		ev.Actor, ev.Object, ev.Outcome = "mqtt:"+r.Claimed, path, "denied"
	}
	c.record(ctx, ev)
	if now := time.Now().UnixNano(); now-c.lastRefusalLog.Load() >= int64(10*time.Second) {
		c.lastRefusalLog.Store(now)
		c.log.Warn("write command refused (further refusals in the next 10s are only counted)",
			"topic", c.cfg.Topic, "reason", r.Short, "detail", r.Detail, "refused_total", c.refused.Load())
	}
	c.reply(ctx, cli, Reply{ID: id, Path: path, Result: audit.Denied, Reason: r.Error()})
}

// record sends ev to the security recorder, filling time and component.
func (c *Commands) record(ctx context.Context, ev security.Event) {
	ev.Time = c.now()
	ev.Component = "write_commands"
	c.events.Record(ctx, ev)
}

// Execute passes a decoded, verified command to the gate as caller
// "mqtt:<cmd.User>" with cmd.Role, and returns the reply to publish.
func (c *Commands) Execute(ctx context.Context, cmd Command) Reply {
	res, err := c.gate.Write(ctx, writegate.Request{
		Path: cmd.Path, Value: cmd.Value, Caller: "mqtt:" + cmd.User, Role: cmd.Role, IssuedAt: cmd.IssuedAt, Reason: cmd.Reason,
	})
	r := Reply{ID: cmd.ID, Path: cmd.Path, Result: res.Result, Reason: res.Reason, Old: res.Old.AppendJSON(nil), New: cmd.Value.AppendJSON(nil)}
	switch {
	case err == nil:
		r.Result = audit.Allowed
		c.allowed.Add(1)
	case errors.Is(err, writegate.ErrAudit):
		// Whatever happened at the device, the trail is broken: say so.
		r.Result, r.Reason = audit.Failed, "audit trail unavailable; writes are disabled"
		c.failed.Add(1)
	case errors.Is(err, writegate.ErrDenied):
		r.Result = audit.Denied
		if r.Reason == "" {
			r.Reason = err.Error()
		}
		c.denied.Add(1)
	default:
		r.Result = audit.Failed
		if r.Reason == "" {
			r.Reason = err.Error()
		}
		c.failed.Add(1)
	}
	return r
}

// reply publishes r on the result topic (QoS 1, not retained).
func (c *Commands) reply(ctx context.Context, cli mqttclient.Conn, r Reply) {
	if len(r.Old) == 0 {
		r.Old = model.Value{}.AppendJSON(nil)
	}
	if len(r.New) == 0 {
		r.New = model.Value{}.AppendJSON(nil)
	}
	b, err := json.Marshal(r)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
		err = cli.Publish(pctx, c.ResultTopic(), b, 1, false)
		cancel()
	}
	if err != nil {
		c.replyErrors.Add(1)
		c.log.Warn("write command result not published", "topic", c.ResultTopic(), "id", r.ID, "err", err)
	}
}

// Status reports the subscription's state and counters.
func (c *Commands) Status() pipeline.Status {
	return pipeline.Status{Name: "write_commands", State: *c.state.Load(), Counters: map[string]uint64{
		"received": c.received.Load(), "allowed": c.allowed.Load(), "denied": c.denied.Load(),
		"failed": c.failed.Load(), "malformed": c.malformed.Load(), "refused": c.refused.Load(), "reply_errors": c.replyErrors.Load(),
	}}
}
