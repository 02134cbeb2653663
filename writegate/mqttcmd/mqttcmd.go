package mqttcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/backoff"
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
	cfg  Config
	gate Gate
	log  *slog.Logger

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
	c := &Commands{cfg: cfg, gate: gate, log: log, subscribed: make(chan struct{})}
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
	u, _ := url.Parse(c.cfg.URL) // validated
	opts := mqtt3.NewClientOptions().
		SetClientID(c.cfg.ClientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(c.cfg.ConnectTimeout).
		SetOrderMatters(false)
	if c.cfg.TLS.Enabled || u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" {
		tc, err := c.cfg.TLS.Load()
		if err != nil {
			return err
		}
		opts.SetTLSConfig(tc)
		u.Scheme = "ssl"
	}
	opts.AddBroker(u.String())
	if c.cfg.Username != "" {
		opts.SetUsername(c.cfg.Username)
	}
	if c.cfg.Password.IsSet() {
		pw, err := c.cfg.Password.Resolve()
		if err != nil {
			return fmt.Errorf("password: %w", err)
		}
		opts.SetPassword(pw)
	}
	lost := make(chan error, 1)
	opts.SetConnectionLostHandler(func(_ mqtt3.Client, err error) {
		select {
		case lost <- err:
		default:
		}
	})
	cli := mqtt3.NewClient(opts)
	if err := wait(ctx, cli.Connect(), c.cfg.ConnectTimeout); err != nil {
		return fmt.Errorf("connect %s: %w", c.cfg.URL, err)
	}
	defer cli.Disconnect(250)

	sctx, stop := context.WithCancel(ctx)
	queue := make(chan []byte, queueSize)
	var wg sync.WaitGroup
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
	defer wg.Wait()
	defer stop()

	if err := wait(ctx, cli.Subscribe(c.cfg.Topic, 1, func(_ mqtt3.Client, msg mqtt3.Message) {
		c.received.Add(1)
		select {
		case queue <- msg.Payload():
		default:
			c.denied.Add(1)
			id, path := peekIDs(msg.Payload())
			c.reply(sctx, cli, Reply{ID: id, Path: path, Result: audit.Denied, Reason: "too many commands waiting; try again"})
		}
	}), c.cfg.ConnectTimeout); err != nil {
		return fmt.Errorf("subscribe %s: %w", c.cfg.Topic, err)
	}
	b.Reset()
	c.setState(pipeline.StateRunning)
	c.log.Info("write commands subscribed", "topic", c.cfg.Topic, "results", c.ResultTopic())
	if c.subscribedOnce.CompareAndSwap(false, true) {
		close(c.subscribed)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-lost:
		return fmt.Errorf("connection lost: %w", err)
	}
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

// wait waits for a paho token, ctx or the timeout.
func wait(ctx context.Context, tok mqtt3.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("timed out")
	}
}

// handle decodes one command, passes it to the gate and publishes the
// outcome.
func (c *Commands) handle(ctx context.Context, cli mqtt3.Client, payload []byte) {
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
func (c *Commands) reply(ctx context.Context, cli mqtt3.Client, r Reply) {
	if len(r.Old) == 0 {
		r.Old = model.Value{}.AppendJSON(nil)
	}
	if len(r.New) == 0 {
		r.New = model.Value{}.AppendJSON(nil)
	}
	b, err := json.Marshal(r)
	if err == nil {
		err = wait(ctx, cli.Publish(c.ResultTopic(), 1, false, b), c.cfg.ConnectTimeout)
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
