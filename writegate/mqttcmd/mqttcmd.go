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
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
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

// queueSize bounds the commands waiting for the gate; beyond it a command
// is refused at once (the sender gets a reply) instead of piling up.
const queueSize = 64

// Commands subscribes to the write command topic, passes each command to
// the gate as caller "mqtt:<user>" and publishes the outcome on
// <topic>/result. Commands are handled one at a time, in arrival order.
// It reconnects on its own, with backoff and jitter.
type Commands struct {
	cfg    Config
	broker mqttclient.Broker // cfg's endpoint, defaults applied
	gate   Gate
	log    *slog.Logger

	state                                        atomic.Pointer[string]
	received, allowed, denied, failed, malformed atomic.Uint64
	replyErrors                                  atomic.Uint64
	subscribed                                   chan struct{} // closed on the first subscription (tests)
	subscribedOnce                               atomic.Bool
}

// New checks cfg and builds the subscriber; nothing connects before Run.
func New(cfg Config, gate Gate, log *slog.Logger) (*Commands, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqttcmd: %w", err)
	}
	if gate == nil {
		return nil, errors.New("mqttcmd: a write gate is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.setDefaults()
	c := &Commands{cfg: cfg, broker: cfg.Broker(), gate: gate, log: log, subscribed: make(chan struct{})}
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
	subs := []mqttclient.Subscription{{Topic: c.cfg.Topic, QoS: 1}}
	return mqttclient.Serve(ctx, &c.broker, subs, func(sctx context.Context, cli mqttclient.Conn) func(mqttclient.Message) {
		queue := make(chan []byte, queueSize)
		wg.Go(func() {
			for {
				select {
				case <-sctx.Done():
					return
				case p := <-queue:
					c.handle(sctx, cli, p)
				}
			}
		})
		return func(msg mqttclient.Message) {
			c.received.Add(1)
			select {
			case queue <- msg.Payload:
			default:
				c.denied.Add(1)
				id, path := peekIDs(msg.Payload)
				c.reply(sctx, cli, Reply{ID: id, Path: path, Result: audit.Denied, Reason: "too many commands waiting; try again"})
			}
		}
	}, func() {
		b.Reset()
		c.setState(pipeline.StateRunning)
		c.log.Info("write commands subscribed", "topic", c.cfg.Topic, "results", c.ResultTopic())
		if c.subscribedOnce.CompareAndSwap(false, true) {
			close(c.subscribed)
		}
	})
}

// peekIDs reads id and path of a command for a reply without decoding it
// fully; both are "" when the payload is not a JSON object.
func peekIDs(p []byte) (id, path string) {
	var w struct {
		ID   string `json:"id"`
		Path string `json:"path"`
	}
	if len(p) <= maxCommandSize && json.Unmarshal(p, &w) == nil && len(w.ID) <= maxID {
		return w.ID, w.Path
	}
	return "", ""
}

// handle decodes one command, passes it to the gate and publishes the
// outcome.
func (c *Commands) handle(ctx context.Context, cli mqttclient.Conn, payload []byte) {
	cmd, err := DecodeCommand(payload)
	if err != nil {
		c.malformed.Add(1)
		c.denied.Add(1)
		if cmd.ID == "" && cmd.Path == "" {
			cmd.ID, cmd.Path = peekIDs(payload)
		}
		c.log.Warn("write command refused", "topic", c.cfg.Topic, "id", cmd.ID, "path", cmd.Path, "err", err)
		c.reply(ctx, cli, Reply{ID: cmd.ID, Path: cmd.Path, Result: audit.Denied, Reason: "malformed command: " + err.Error()})
		return
	}
	c.reply(ctx, cli, c.Execute(ctx, cmd))
}

// Execute passes a decoded command to the gate and returns the reply
// to publish. Exposed for callers that receive commands by other means.
func (c *Commands) Execute(ctx context.Context, cmd Command) Reply {
	res, err := c.gate.Write(ctx, writegate.Request{
		Path: cmd.Path, Value: cmd.Value, Caller: "mqtt:" + cmd.User, IssuedAt: cmd.IssuedAt, Reason: cmd.Reason,
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
		"failed": c.failed.Load(), "malformed": c.malformed.Load(), "reply_errors": c.replyErrors.Load(),
	}}
}
