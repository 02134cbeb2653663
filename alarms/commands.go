package alarms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/pipeline"
)

// Command is the JSON payload of an acknowledgement on the command topic:
//
//	{"name": "filler_overheat", "user": "alice", "comment": "on it"}
//
// name and user are required; the acknowledgement is recorded as by
// "mqtt:<user>".
type Command struct {
	Name    string `json:"name"`
	User    string `json:"user"`
	Comment string `json:"comment"`
}

// maxCommandSize bounds a command payload.
const maxCommandSize = 16 << 10

// DecodeCommand parses and checks one command payload.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if len(b) > maxCommandSize {
		return c, fmt.Errorf("command is %d bytes, the limit is %d", len(b), maxCommandSize)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("command is not a JSON object {name, user, comment}: %w", err)
	}
	if err := ValidName(c.Name); err != nil {
		return c, err
	}
	if c.User == "" || len(c.User) > 128 {
		return c, errors.New("command needs a user (at most 128 bytes)")
	}
	if len(c.Comment) > 1024 {
		return c, errors.New("comment is longer than 1024 bytes")
	}
	return c, nil
}

// Commands subscribes to the MQTT command topic and acknowledges alarms
// in the Manager. It reconnects on its own, with backoff and jitter.
type Commands struct {
	cfg    CommandsConfig
	broker mqttclient.Broker // cfg's endpoint, defaults applied
	topic  string
	m      *Manager
	log    *slog.Logger

	state                     atomic.Pointer[string]
	received, acked, rejected atomic.Uint64
	subscribed                chan struct{} // closed on the first subscription (tests)
	subscribedOnce            atomic.Bool
}

var _ pipeline.StatusReporter = (*Commands)(nil)

// NewCommands builds the subscriber; nothing connects before Run.
func NewCommands(cfg CommandsConfig, m *Manager, log *slog.Logger) (*Commands, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alarms: commands: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	c := &Commands{cfg: cfg, broker: cfg.Broker(), topic: cfg.Topic, m: m, log: log, subscribed: make(chan struct{})}
	if c.topic == "" {
		c.topic = m.Prefix() + "/_commands/alarms/ack"
	}
	st := pipeline.StateStarting
	c.state.Store(&st)
	return c, nil
}

// Topic is the subscribed topic.
func (c *Commands) Topic() string { return c.topic }

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
// or ctx ends.
func (c *Commands) session(ctx context.Context, b *backoff.Backoff) error {
	subs := []mqttclient.Subscription{{Topic: c.topic, QoS: 1}}
	return mqttclient.Serve(ctx, &c.broker, subs, func(context.Context, mqttclient.Conn) func(mqttclient.Message) {
		return func(m mqttclient.Message) { c.handle(m.Payload) }
	}, func() {
		b.Reset()
		c.setState(pipeline.StateRunning)
		c.log.Info("alarm commands subscribed", "topic", c.topic)
		if c.subscribedOnce.CompareAndSwap(false, true) {
			close(c.subscribed)
		}
	})
}

// handle acknowledges the alarm a command names.
func (c *Commands) handle(payload []byte) {
	c.received.Add(1)
	cmd, err := DecodeCommand(payload)
	if err == nil {
		_, err = c.m.Acknowledge(cmd.Name, "mqtt:"+cmd.User, cmd.Comment)
	}
	if err != nil {
		c.rejected.Add(1)
		c.log.Warn("alarm command refused", "topic", c.topic, "alarm", cmd.Name, "user", cmd.User, "err", err)
		return
	}
	c.acked.Add(1)
}

// Status reports the subscription's state and counters.
func (c *Commands) Status() pipeline.Status {
	return pipeline.Status{Name: "alarm_commands", State: *c.state.Load(), Counters: map[string]uint64{
		"received": c.received.Load(), "acked": c.acked.Load(), "rejected": c.rejected.Load(),
	}}
}
