package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// inbound is one received PUBLISH.
type inbound struct {
	topic    string
	payload  []byte
	retained bool
}

// subscription is one SUBSCRIBE entry.
type subscription struct {
	topic string
	qos   byte
}

// willMsg is the last will registered at CONNECT.
type willMsg struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
}

// conn is one established MQTT connection, whatever the protocol version.
// It is never reconnected: the source dials a new one (with backoff) when
// it ends, so that reconnect policy lives in one place.
type conn interface {
	// subscribe sends one SUBSCRIBE and fails if the broker refuses any
	// entry.
	subscribe(ctx context.Context, subs []subscription) error
	// publish sends one message; at QoS 1 it waits for the PUBACK. It must
	// not be called from the message handler (the handler's goroutine is
	// the one that would read the PUBACK).
	publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
	// sessionPresent reports whether the broker resumed a session.
	sessionPresent() bool
	done() <-chan struct{}
	// cause is why the connection ended; nil while up or after close.
	cause() error
	// close sends DISCONNECT and waits for the library's goroutines.
	close() error
}

// dialOptions is what both implementations need to connect.
type dialOptions struct {
	addr          string
	tls           *tls.Config // nil: plain TCP
	clientID      string
	username      string
	password      string
	keepAlive     time.Duration
	ackTimeout    time.Duration
	cleanStart    bool
	sessionExpiry time.Duration
	will          *willMsg
	// session carries MQTT 5 packet-id state across connections of one
	// persistent session (paho.golang).
	session *state.State
	// onMessage is called for every PUBLISH, one at a time, in arrival
	// order, from the library's goroutine. The message is acknowledged
	// when it returns.
	onMessage func(inbound)
}

type dialFunc func(ctx context.Context, o dialOptions) (conn, error)

// dialNet opens the TCP (and TLS) connection, so that ctx governs dialling
// and the handshake for both libraries.
func dialNet(ctx context.Context, o dialOptions) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: o.keepAlive}
	if o.tls == nil {
		return d.DialContext(ctx, "tcp", o.addr)
	}
	cfg := o.tls.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(o.addr)
		if err != nil {
			return nil, err
		}
		cfg.ServerName = host
	}
	return (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", o.addr)
}

// causeBox records the first reason a connection ended.
type causeBox struct {
	mu  sync.Mutex
	err error
}

func (c *causeBox) set(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *causeBox) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// conn5 is MQTT 5 on paho.golang's low-level client. autopaho is not used:
// it reconnects and re-subscribes on its own schedule, while the source
// must see each connection's end to mark Sparkplug data stale and to apply
// the project's backoff policy.
type conn5 struct {
	causeBox
	cli     *paho.Client
	present bool
}

func dial5(ctx context.Context, o dialOptions) (conn, error) {
	nc, err := dialNet(ctx, o)
	if err != nil {
		return nil, err
	}
	c := &conn5{}
	cfg := paho.ClientConfig{
		ClientID:      o.clientID,
		Conn:          packets.NewThreadSafeConn(nc),
		PacketTimeout: o.ackTimeout,
		OnClientError: c.set,
		OnServerDisconnect: func(d *paho.Disconnect) {
			reason := ""
			if d.Properties != nil {
				reason = d.Properties.ReasonString
			}
			c.set(fmt.Errorf("broker sent DISCONNECT, reason code 0x%02x %s", d.ReasonCode, reason))
		},
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			o.onMessage(inbound{topic: pr.Packet.Topic, payload: pr.Packet.Payload, retained: pr.Packet.Retain})
			return true, nil
		}},
	}
	if o.session != nil {
		cfg.Session = o.session
	}
	c.cli = paho.NewClient(cfg)
	cp := &paho.Connect{
		ClientID:   o.clientID,
		KeepAlive:  keepAliveSeconds(o.keepAlive),
		CleanStart: o.cleanStart,
	}
	if !o.cleanStart {
		exp := uint32(o.sessionExpiry / time.Second)
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &exp}
	}
	if w := o.will; w != nil {
		cp.WillMessage = &paho.WillMessage{Retain: w.retain, QoS: w.qos, Topic: w.topic, Payload: w.payload}
	}
	if o.username != "" {
		cp.Username, cp.UsernameFlag = o.username, true
	}
	if o.password != "" {
		cp.Password, cp.PasswordFlag = []byte(o.password), true
	}
	ca, err := c.cli.Connect(ctx, cp)
	if err != nil {
		if ca != nil {
			return nil, fmt.Errorf("CONNACK reason code 0x%02x: %w", ca.ReasonCode, err)
		}
		return nil, err
	}
	c.present = ca.SessionPresent
	return c, nil
}

func (c *conn5) subscribe(ctx context.Context, subs []subscription) error {
	req := &paho.Subscribe{}
	for _, s := range subs {
		opt := paho.SubscribeOptions{Topic: s.topic, QoS: s.qos}
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
	if err != nil {
		if sa != nil && len(sa.Reasons) > 0 {
			return fmt.Errorf("%w (reason code 0x%02x)", err, sa.Reasons[0])
		}
		return err
	}
	for i, rc := range sa.Reasons {
		if rc >= 0x80 && i < len(subs) {
			return fmt.Errorf("broker refused subscription %q: reason code 0x%02x", subs[i].topic, rc)
		}
	}
	return nil
}

func (c *conn5) publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	resp, err := c.cli.Publish(ctx, &paho.Publish{QoS: qos, Retain: retain, Topic: topic, Payload: payload})
	if err != nil && resp != nil && resp.ReasonCode >= 0x80 {
		return fmt.Errorf("PUBACK reason code 0x%02x: %w", resp.ReasonCode, err)
	}
	return err
}

func (c *conn5) sessionPresent() bool  { return c.present }
func (c *conn5) done() <-chan struct{} { return c.cli.Done() }

func (c *conn5) close() error {
	err := c.cli.Disconnect(&paho.Disconnect{ReasonCode: 0})
	<-c.cli.Done()
	return err
}

// keepAliveSeconds rounds up to whole seconds, as the protocol carries.
func keepAliveSeconds(d time.Duration) uint16 {
	s := (d + time.Second - 1) / time.Second
	return uint16(min(s, 65535))
}

// errAckTimeout marks an acknowledgement that did not come in time.
var errAckTimeout = errors.New("no acknowledgement within the keep-alive interval")
