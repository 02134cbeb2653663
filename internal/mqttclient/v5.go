package mqttclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/weir-edge/weir/internal/logcapture"
)

// conn5 is MQTT 5 on paho.golang's low-level client. autopaho is not used
// on purpose: it reconnects, re-subscribes and queues on its own schedule,
// while every component must see each connection's end (the sinks to keep
// the batch in the durable buffer, the source to mark Sparkplug data stale)
// and apply the project's backoff policy.
type conn5 struct {
	causeBox
	cli     *paho.Client
	present bool
	// maxPacket is the CONNACK's Maximum Packet Size, 0 when absent.
	maxPacket uint32
	// done closes after paho's Done and, when the connection failed, after
	// the cause is recorded: paho reports it on a goroutine of its own once
	// its Done has closed, and whoever sees Done reads Cause.
	done    chan struct{}
	closing chan struct{}
	once    sync.Once
	// own is the session state made for this connection alone (no
	// Options.Session), closed when the connection has ended.
	own *state.State
}

// causeGrace bounds the wait for paho's error callback after its Done.
const causeGrace = time.Second

// failed records why the connection ended, unless Close ended it (the
// reader then fails on the closed socket).
func (c *conn5) failed(err error) {
	select {
	case <-c.closing:
	default:
		c.set(err)
	}
}

func (c *conn5) watch() {
	<-c.cli.Done()
	if c.own != nil {
		_ = c.own.Close()
	}
	t := time.NewTimer(causeGrace)
	defer t.Stop()
	select {
	case <-c.recorded:
	case <-c.closing:
	case <-t.C:
	}
	close(c.done)
}

var (
	_ Conn          = (*conn5)(nil)
	_ PacketLimiter = (*conn5)(nil)
)

func dial5(ctx context.Context, nc *limitConn, o Options) (Conn, error) {
	c := &conn5{causeBox: newCauseBox(), done: make(chan struct{}), closing: make(chan struct{})}
	cfg := paho.ClientConfig{
		ClientID: o.ClientID,
		// paho writes from several goroutines; tls.Conn and friends need
		// the lock.
		Conn:          packets.NewThreadSafeConn(nc),
		PacketTimeout: o.AckTimeout,
		OnClientError: c.failed,
		OnServerDisconnect: func(d *paho.Disconnect) {
			reason := ""
			if d.Properties != nil {
				reason = d.Properties.ReasonString
			}
			c.failed(&DisconnectError{ReasonCode: d.ReasonCode, Reason: reason})
		},
	}
	if o.OnMessage != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			p := pr.Packet
			o.OnMessage(Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain,
				Oversize: nc.lr.oversize(p.Topic, p.PacketID, p.Payload)})
			return true, nil
		}}
	}
	if o.Session != nil {
		cfg.Session = o.Session
	} else {
		c.own = NewSession()
		cfg.Session = c.own
	}
	c.cli = paho.NewClient(cfg)
	c.cli.SetErrorLogger(logcapture.Logger("paho", slog.LevelWarn))
	cp := &paho.Connect{
		ClientID:   o.ClientID,
		KeepAlive:  keepAliveSeconds(o.KeepAlive),
		CleanStart: !o.KeepSession,
		// Maximum Packet Size (3.1.2.11.4): a broker that honours it
		// discards larger messages for this client instead of sending
		// them; nc enforces it either way.
		Properties: &paho.ConnectProperties{MaximumPacketSize: &o.MaxPacketSize},
	}
	if o.KeepSession {
		exp := uint32(o.SessionExpiry / time.Second)
		cp.Properties.SessionExpiryInterval = &exp
	}
	if w := o.Will; w != nil {
		cp.WillMessage = &paho.WillMessage{Retain: w.Retain, QoS: w.QoS, Topic: w.Topic, Payload: w.Payload}
	}
	if o.Username != "" {
		cp.Username, cp.UsernameFlag = o.Username, true
	}
	if o.Password != "" {
		cp.Password, cp.PasswordFlag = []byte(o.Password), true
	}
	ca, err := c.cli.Connect(ctx, cp)
	if err != nil {
		// paho has closed nc.
		if c.own != nil {
			_ = c.own.Close()
		}
		if ca != nil {
			return nil, fmt.Errorf("CONNACK reason code 0x%02x: %w", ca.ReasonCode, err)
		}
		return nil, err
	}
	c.present = ca.SessionPresent
	if ca.Properties != nil && ca.Properties.MaximumPacketSize != nil {
		c.maxPacket = *ca.Properties.MaximumPacketSize
	}
	go c.watch()
	return c, nil
}

func (c *conn5) Subscribe(ctx context.Context, subs []Subscription) error {
	req := &paho.Subscribe{}
	for _, s := range subs {
		opt := paho.SubscribeOptions{Topic: s.Topic, QoS: s.QoS}
		if c.present {
			// The session already holds this subscription: do not replay
			// retained messages the session has delivered before.
			opt.RetainHandling = 1
		}
		req.Subscriptions = append(req.Subscriptions, opt)
	}
	var sa *paho.Suback
	var err error
	for range 3 {
		sa, err = c.cli.Subscribe(ctx, req)
		// 0x91 "packet identifier in use": mochi-mqtt (v2.7.9) checks our
		// SUBSCRIBE's id against the ids of its own in-flight PUBLISHes of
		// a resumed session, although the two directions have separate id
		// spaces. The next SUBSCRIBE gets another id.
		if err == nil || sa == nil || !slices.Contains(sa.Reasons, 0x91) {
			break
		}
	}
	if sa != nil {
		for i, rc := range sa.Reasons {
			if rc >= 0x80 && i < len(subs) {
				return refusedSub(subs[i].Topic, rc)
			}
		}
	}
	return err
}

func (c *conn5) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	resp, err := c.cli.Publish(ctx, &paho.Publish{QoS: qos, Retain: retain, Topic: topic, Payload: payload})
	switch {
	case err == nil:
		return nil
	case resp != nil && resp.ReasonCode >= 0x80:
		reason := ""
		if resp.Properties != nil {
			reason = resp.Properties.ReasonString
		}
		return &PubackError{ReasonCode: resp.ReasonCode, Reason: reason}
	case errors.Is(err, paho.ErrInvalidArguments):
		return fmt.Errorf("%w: %w", ErrRefused, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return ErrAckTimeout // paho's PacketTimeout, not the caller's deadline
	}
	return err
}

func (c *conn5) SessionPresent() bool  { return c.present }
func (c *conn5) MaxPacketSize() uint32 { return c.maxPacket }
func (c *conn5) Done() <-chan struct{} { return c.done }

// Close disconnects; paho's Disconnect waits for the client's goroutines,
// Close also for its own watcher.
func (c *conn5) Close() error {
	c.once.Do(func() { close(c.closing) })
	err := c.cli.Disconnect(&paho.Disconnect{ReasonCode: 0})
	<-c.done
	return err
}
