package mqtt

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt3 "github.com/eclipse/paho.mqtt.golang"
)

// conn311 is an MQTT 3.1.1 connection on paho.mqtt.golang (paho.golang
// speaks only MQTT 5). The library's own reconnect and retry loops are
// switched off: the engine owns reconnecting.
type conn311 struct {
	cli        mqtt3.Client
	ackTimeout time.Duration

	lost     chan struct{}
	lostOnce sync.Once
	mu       sync.Mutex
	err      error
}

func dial311(ctx context.Context, o dialOptions) (conn, error) {
	nc, err := dialNet(ctx, o)
	if err != nil {
		return nil, err
	}
	c := &conn311{ackTimeout: o.ackTimeout, lost: make(chan struct{})}
	var handed sync.Once
	opts := mqtt3.NewClientOptions().
		AddBroker("tcp://"+o.addr). // only for the library's bookkeeping; nc is already dialled
		SetClientID(o.clientID).
		SetProtocolVersion(4). // 3.1.1, no silent fallback to 3.1
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(o.keepAlive).
		SetPingTimeout(o.ackTimeout).
		SetWriteTimeout(o.writeTimeout).
		SetOrderMatters(false).
		SetBinaryWill(o.willTopic, o.willPayload, 1, true).
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
		// A little later than ctx, so that ctx's end (which closes nc, see
		// below) is what the caller sees, not the library's own timer.
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
	if ctx.Err() != nil { // ctx ended just as CONNACK arrived
		c.cli.Disconnect(0)
		return nil, ctx.Err()
	}
	return c, nil
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

func (c *conn311) publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	t := time.NewTimer(c.ackTimeout)
	defer t.Stop()
	return awaitToken(ctx, c.publishAsync(topic, payload, qos, retain), t.C)
}

// publishAsync hands the message to the library and returns its token.
// paho.mqtt.golang writes publishes one at a time from a single goroutine,
// so the sink keeps a window of tokens rather than a pool of workers, and
// per-topic order follows from TCP order.
//
// Caveat of the library: if the connection drops while the message is
// being handed over, the call blocks until write_timeout (set to
// connect_timeout) expires.
func (c *conn311) publishAsync(topic string, payload []byte, qos byte, retain bool) pubToken {
	return c.cli.Publish(topic, qos, retain, payload)
}

func (c *conn311) close() error {
	// Disconnect waits up to quiesce ms for in-flight work; the offline
	// status was already confirmed, so little is pending.
	c.cli.Disconnect(250)
	c.markLost()
	return nil
}
