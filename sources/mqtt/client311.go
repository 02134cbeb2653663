package mqtt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt3 "github.com/eclipse/paho.mqtt.golang"
)

// conn311 is MQTT 3.1.1 on paho.mqtt.golang (paho.golang speaks only
// MQTT 5), with the library's own reconnect and resubscribe switched off.
// OrderMatters makes the library call the handler from one goroutine in
// arrival order and acknowledge a QoS 1 message only when it returns.
type conn311 struct {
	causeBox
	cli        mqtt3.Client
	ackTimeout time.Duration
	present    bool

	lost     chan struct{}
	lostOnce sync.Once
}

func dial311(ctx context.Context, o dialOptions) (conn, error) {
	nc, err := dialNet(ctx, o)
	if err != nil {
		return nil, err
	}
	c := &conn311{ackTimeout: o.ackTimeout, lost: make(chan struct{})}
	var handed sync.Once
	opts := mqtt3.NewClientOptions().
		AddBroker("tcp://" + o.addr). // bookkeeping only; nc is already dialled
		SetClientID(o.clientID).
		SetProtocolVersion(4). // 3.1.1, no silent fallback to 3.1
		SetCleanSession(o.cleanStart).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetKeepAlive(o.keepAlive).
		SetPingTimeout(o.ackTimeout).
		SetWriteTimeout(o.ackTimeout).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt3.Client, m mqtt3.Message) {
			o.onMessage(inbound{topic: m.Topic(), payload: m.Payload(), retained: m.Retained()})
		}).
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
	if w := o.will; w != nil {
		opts.SetBinaryWill(w.topic, w.payload, w.qos, w.retain)
	}
	if deadline, ok := ctx.Deadline(); ok {
		// Later than ctx, so that ctx's end (which closes nc) is what the
		// caller sees, not the library's own timer.
		opts.SetConnectTimeout(time.Until(deadline) + time.Second)
	}
	if o.username != "" {
		opts.SetUsername(o.username)
	}
	if o.password != "" {
		opts.SetPassword(o.password)
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
	if ctx.Err() != nil {
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
func (c *conn311) wait(ctx context.Context, tok mqtt3.Token) error {
	t := time.NewTimer(c.ackTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-c.lost:
		return errors.New("connection lost")
	case <-t.C:
		return errAckTimeout
	}
}

func (c *conn311) subscribe(ctx context.Context, subs []subscription) error {
	filters := make(map[string]byte, len(subs))
	for _, s := range subs {
		filters[s.topic] = s.qos
	}
	var err error
	for range 3 {
		// A refusal is tried again: mochi-mqtt (v2.7.9) refuses a
		// SUBSCRIBE whose packet id equals one of its own in-flight
		// PUBLISHes of a resumed session; the next attempt gets another id.
		if err = c.subscribeOnce(ctx, filters); err == nil || !errors.Is(err, errRefusedSub) {
			break
		}
	}
	return err
}

var errRefusedSub = errors.New("broker refused the subscription")

func (c *conn311) subscribeOnce(ctx context.Context, filters map[string]byte) error {
	tok := c.cli.SubscribeMultiple(filters, nil) // nil: the default handler
	if err := c.wait(ctx, tok); err != nil {
		return err
	}
	if st, ok := tok.(*mqtt3.SubscribeToken); ok {
		for topic, rc := range st.Result() {
			if rc >= 0x80 {
				return fmt.Errorf("%w: %q", errRefusedSub, topic)
			}
		}
	}
	return nil
}

func (c *conn311) publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	return c.wait(ctx, c.cli.Publish(topic, qos, retain, payload))
}

func (c *conn311) sessionPresent() bool  { return c.present }
func (c *conn311) done() <-chan struct{} { return c.lost }

func (c *conn311) close() error {
	c.cli.Disconnect(250)
	c.markLost()
	return nil
}
