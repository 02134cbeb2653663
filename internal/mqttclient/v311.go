package mqttclient

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt3 "github.com/eclipse/paho.mqtt.golang"
)

// conn311 is MQTT 3.1.1 on paho.mqtt.golang (paho.golang speaks only
// MQTT 5), with the library's own reconnect, connect retry and resubscribe
// switched off: whoever dialled owns reconnecting.
type conn311 struct {
	causeBox
	cli        mqtt3.Client
	ackTimeout time.Duration
	present    bool

	lost     chan struct{}
	lostOnce sync.Once
}

var (
	_ Conn           = (*conn311)(nil)
	_ AsyncPublisher = (*conn311)(nil)
)

func dial311(ctx context.Context, nc *limitConn, o Options) (Conn, error) {
	c := &conn311{causeBox: newCauseBox(), ackTimeout: o.AckTimeout, lost: make(chan struct{})}
	var handed sync.Once
	opts := mqtt3.NewClientOptions().
		AddBroker("tcp://" + o.Addr). // bookkeeping only; nc is already dialled
		SetClientID(o.ClientID).
		SetProtocolVersion(4). // 3.1.1, no silent fallback to 3.1
		SetCleanSession(!o.KeepSession).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(o.AckTimeout).
		SetWriteTimeout(o.WriteTimeout).
		// Ordered: the library calls the handler from one goroutine in
		// arrival order and acknowledges a QoS 1 message when it returns.
		SetOrderMatters(o.Ordered).
		SetCustomOpenConnectionFn(func(*url.URL, mqtt3.ClientOptions) (net.Conn, error) {
			var out net.Conn
			handed.Do(func() { out = nc })
			if out == nil {
				return nil, errors.New("connection already used")
			}
			return out, nil
		}).
		SetConnectionLostHandler(func(_ mqtt3.Client, err error) {
			c.set(err)
			c.markLost()
		})
	if o.OnMessage != nil {
		opts.SetDefaultPublishHandler(func(_ mqtt3.Client, m mqtt3.Message) {
			o.OnMessage(Message{Topic: m.Topic(), Payload: m.Payload(), QoS: m.Qos(), Retain: m.Retained(),
				Oversize: nc.lr.oversize(m.Topic(), m.MessageID(), m.Payload())})
		})
	}
	if w := o.Will; w != nil {
		opts.SetBinaryWill(w.Topic, w.Payload, w.QoS, w.Retain)
	}
	if deadline, ok := ctx.Deadline(); ok {
		// A little later than ctx, so that ctx's end (which closes nc, see
		// below) is what the caller sees, not the library's own timer.
		opts.SetConnectTimeout(time.Until(deadline) + time.Second)
	}
	if o.Username != "" {
		opts.SetUsername(o.Username)
	}
	if o.Password != "" {
		opts.SetPassword(o.Password)
	}
	c.cli = mqtt3.NewClient(opts)

	// The library's CONNECT wait knows no ctx: closing the socket when ctx
	// ends makes it return at once.
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	tok := c.cli.Connect()
	<-tok.Done()
	stop()
	if err := tok.Error(); err != nil {
		_ = nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if ctx.Err() != nil { // ctx ended just as CONNACK arrived
		c.cli.Disconnect(0)
		return nil, ctx.Err()
	}
	if ct, ok := tok.(*mqtt3.ConnectToken); ok {
		c.present = ct.SessionPresent()
	}
	return c, nil
}

func (c *conn311) markLost() { c.lostOnce.Do(func() { close(c.lost) }) }

// wait waits for tok, ctx, the connection's end or the ack timeout.
func (c *conn311) wait(ctx context.Context, tok Token) error {
	t := time.NewTimer(c.ackTimeout)
	defer t.Stop()
	return await(ctx, tok, t.C, c.lost)
}

func (c *conn311) Subscribe(ctx context.Context, subs []Subscription) error {
	filters := make(map[string]byte, len(subs))
	for _, s := range subs {
		filters[s.Topic] = s.QoS
	}
	var err error
	for range 3 {
		// A refusal is tried again: mochi-mqtt (v2.7.9) refuses a
		// SUBSCRIBE whose packet id equals one of its own in-flight
		// PUBLISHes of a resumed session; the next attempt gets another id.
		if err = c.subscribeOnce(ctx, filters); err == nil || !errors.Is(err, ErrRefused) {
			break
		}
	}
	return err
}

func (c *conn311) subscribeOnce(ctx context.Context, filters map[string]byte) error {
	tok := c.cli.SubscribeMultiple(filters, nil) // nil: the default handler, OnMessage
	if err := c.wait(ctx, tok); err != nil {
		return err
	}
	if st, ok := tok.(*mqtt3.SubscribeToken); ok {
		for topic, rc := range st.Result() {
			if rc >= 0x80 {
				return refusedSub(topic, rc)
			}
		}
	}
	return nil
}

func (c *conn311) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	return c.wait(ctx, c.PublishAsync(topic, payload, qos, retain))
}

func (c *conn311) PublishAsync(topic string, payload []byte, qos byte, retain bool) Token {
	return c.cli.Publish(topic, qos, retain, payload)
}

func (c *conn311) SessionPresent() bool  { return c.present }
func (c *conn311) Done() <-chan struct{} { return c.lost }

func (c *conn311) Close() error {
	// Disconnect waits up to quiesce ms for in-flight work.
	c.cli.Disconnect(250)
	c.markLost()
	return nil
}
