package sparkplug

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
)

// conn is one established MQTT connection, whatever the protocol version,
// already subscribed to the topics the edge node listens on. It is never
// reconnected: when it ends the sink dials a new one on the engine's next
// Connect, so that reconnect policy (backoff, jitter) lives in the engine.
type conn interface {
	// publish sends one message and returns once it is confirmed: PUBACK
	// for QoS 1, written to the socket for QoS 0.
	publish(ctx context.Context, topic string, payload []byte, qos byte) error
	// publishAsync is for windowed QoS 1 publishing; nil result means the
	// connection cannot do it (MQTT 5 publishes one at a time).
	publishAsync(topic string, payload []byte, qos byte) pubToken
	done() <-chan struct{}
	cause() error
	// close sends DISCONNECT (the broker then discards the will).
	close() error
}

// pubToken is the part of a paho.mqtt.golang token the sink uses.
type pubToken interface {
	Done() <-chan struct{}
	Error() error
}

// dialOptions is what both implementations need to connect.
type dialOptions struct {
	addr         string
	tls          *tls.Config
	clientID     string
	username     string
	password     string
	keepAlive    time.Duration
	ackTimeout   time.Duration
	writeTimeout time.Duration
	willTopic    string
	willPayload  []byte
	// subscribe lists topics subscribed at QoS 1 before dial returns.
	subscribe []string
	// onMessage receives every inbound PUBLISH. It must not block.
	onMessage func(topic string, payload []byte)
}

type dialFunc func(ctx context.Context, o dialOptions) (conn, error)

var (
	errRefused    = errors.New("refused by broker")
	errAckTimeout = errors.New("no PUBACK within the keep-alive interval")
)

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

// conn5 is MQTT 5 on paho.golang's low-level client (not autopaho, which
// reconnects and queues on its own behind the engine's back).
type conn5 struct {
	cli *paho.Client
	mu  sync.Mutex
	err error
}

func dial5(ctx context.Context, o dialOptions) (conn, error) {
	nc, err := dialNet(ctx, o)
	if err != nil {
		return nil, err
	}
	c := &conn5{}
	c.cli = paho.NewClient(paho.ClientConfig{
		ClientID:      o.clientID,
		Conn:          packets.NewThreadSafeConn(nc),
		PacketTimeout: o.ackTimeout,
		OnClientError: func(err error) { c.setCause(err) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			c.setCause(fmt.Errorf("broker sent DISCONNECT, reason code 0x%02x", d.ReasonCode))
		},
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				o.onMessage(pr.Packet.Topic, pr.Packet.Payload)
				return true, nil
			},
		},
	})
	// Sparkplug: Clean Start and Session Expiry 0 (the default when the
	// property is absent); Will QoS 1, not retained.
	cp := &paho.Connect{
		ClientID:   o.clientID,
		KeepAlive:  keepAliveSeconds(o.keepAlive),
		CleanStart: true,
		WillMessage: &paho.WillMessage{
			Retain: false, QoS: 1, Topic: o.willTopic, Payload: o.willPayload,
		},
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
	if len(o.subscribe) > 0 {
		sub := &paho.Subscribe{}
		for _, t := range o.subscribe {
			sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{Topic: t, QoS: 1})
		}
		sa, err := c.cli.Subscribe(ctx, sub)
		if err == nil {
			for i, rc := range sa.Reasons {
				if rc >= 0x80 {
					err = fmt.Errorf("%w: SUBACK for %s: reason code 0x%02x", errRefused, o.subscribe[min(i, len(o.subscribe)-1)], rc)
					break
				}
			}
		}
		if err != nil {
			_ = c.close()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	return c, nil
}

func (c *conn5) setCause(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *conn5) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *conn5) done() <-chan struct{} { return c.cli.Done() }

func (c *conn5) publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	resp, err := c.cli.Publish(ctx, &paho.Publish{QoS: qos, Topic: topic, Payload: payload})
	switch {
	case err == nil:
		return nil
	case resp != nil && resp.ReasonCode >= 0x80:
		return fmt.Errorf("%w: PUBACK reason code 0x%02x", errRefused, resp.ReasonCode)
	case errors.Is(err, paho.ErrInvalidArguments):
		return fmt.Errorf("%w: %w", errRefused, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return errAckTimeout
	}
	return err
}

func (c *conn5) publishAsync(string, []byte, byte) pubToken { return nil }

func (c *conn5) close() error { return c.cli.Disconnect(&paho.Disconnect{ReasonCode: 0}) }

func keepAliveSeconds(d time.Duration) uint16 {
	s := (d + time.Second - 1) / time.Second
	if s > 65535 {
		s = 65535
	}
	return uint16(s)
}

// conn311 is MQTT 3.1.1 on paho.mqtt.golang, its reconnect and retry
// loops switched off.
type conn311 struct {
	cli        mqtt3.Client
	ackTimeout time.Duration
	lost       chan struct{}
	lostOnce   sync.Once
	mu         sync.Mutex
	err        error
}

func dial311(ctx context.Context, o dialOptions) (conn, error) {
	nc, err := dialNet(ctx, o)
	if err != nil {
		return nil, err
	}
	c := &conn311{ackTimeout: o.ackTimeout, lost: make(chan struct{})}
	var handed sync.Once
	opts := mqtt3.NewClientOptions().
		AddBroker("tcp://"+o.addr). // bookkeeping only; nc is already dialled
		SetClientID(o.clientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(o.keepAlive).
		SetPingTimeout(o.ackTimeout).
		SetWriteTimeout(o.writeTimeout).
		SetOrderMatters(false).
		SetBinaryWill(o.willTopic, o.willPayload, 1, false).
		SetCustomOpenConnectionFn(func(*url.URL, mqtt3.ClientOptions) (net.Conn, error) {
			var out net.Conn
			handed.Do(func() { out = nc })
			if out == nil {
				return nil, errors.New("connection already used")
			}
			return out, nil
		}).
		SetConnectionLostHandler(func(_ mqtt3.Client, err error) {
			c.setCause(err)
			c.markLost()
		})
	if deadline, ok := ctx.Deadline(); ok {
		opts.SetConnectTimeout(time.Until(deadline) + time.Second)
	}
	if o.username != "" {
		opts.SetUsername(o.username)
	}
	if o.password != "" {
		opts.SetPassword(o.password)
	}
	c.cli = mqtt3.NewClient(opts)
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	defer stop()
	tok := c.cli.Connect()
	<-tok.Done()
	if err := tok.Error(); err != nil {
		_ = nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if len(o.subscribe) > 0 {
		filters := make(map[string]byte, len(o.subscribe))
		for _, t := range o.subscribe {
			filters[t] = 1
		}
		st := c.cli.SubscribeMultiple(filters, func(_ mqtt3.Client, m mqtt3.Message) {
			o.onMessage(m.Topic(), m.Payload())
		})
		t := time.NewTimer(o.ackTimeout)
		defer t.Stop()
		err := awaitToken(ctx, st, t.C)
		if err == nil {
			for topic, rc := range st.(*mqtt3.SubscribeToken).Result() {
				if rc >= 0x80 {
					err = fmt.Errorf("%w: SUBACK for %s: 0x%02x", errRefused, topic, rc)
				}
			}
		}
		if err != nil {
			_ = c.close()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	if ctx.Err() != nil {
		_ = c.close()
		return nil, ctx.Err()
	}
	return c, nil
}

func awaitToken(ctx context.Context, tok pubToken, timeout <-chan time.Time) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return errAckTimeout
	}
}

func (c *conn311) setCause(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *conn311) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *conn311) markLost() { c.lostOnce.Do(func() { close(c.lost) }) }

func (c *conn311) done() <-chan struct{} { return c.lost }

func (c *conn311) publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	t := time.NewTimer(c.ackTimeout)
	defer t.Stop()
	return awaitToken(ctx, c.cli.Publish(topic, qos, false, payload), t.C)
}

// publishAsync: paho.mqtt.golang writes publishes in call order from one
// goroutine, so a window of tokens keeps the Sparkplug seq order on the wire.
func (c *conn311) publishAsync(topic string, payload []byte, qos byte) pubToken {
	return c.cli.Publish(topic, qos, false, payload)
}

func (c *conn311) close() error {
	c.cli.Disconnect(250)
	c.markLost()
	return nil
}
