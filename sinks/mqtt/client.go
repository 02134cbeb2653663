package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// conn is one established MQTT connection, whatever the protocol version.
// It hides paho.golang (MQTT 5) and paho.mqtt.golang (3.1.1) behind the
// three things the sink needs. A conn is never reconnected: when it ends,
// the sink dials a new one on the engine's next Connect call, so that
// reconnect policy (backoff and jitter) lives in one place, the engine.
type conn interface {
	// publish sends one message and returns once it is confirmed: PUBACK
	// for QoS 1, handed to the socket for QoS 0. It is safe for concurrent
	// use. payload must stay unchanged until publish returns; after an
	// error the client library may still hold it.
	publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
	// done is closed when the connection has ended, lost or closed.
	done() <-chan struct{}
	// cause is why the connection ended; nil while it is up or after close.
	cause() error
	// close sends DISCONNECT (so the broker discards the will), closes the
	// socket and waits for the library's goroutines.
	close() error
}

// dialOptions is what both implementations need to connect.
type dialOptions struct {
	addr      string
	tls       *tls.Config // nil: plain TCP
	clientID  string
	username  string
	password  string
	keepAlive time.Duration
	// ackTimeout bounds the wait for one PUBACK.
	ackTimeout time.Duration
	// writeTimeout bounds writing one packet (3.1.1 only).
	writeTimeout time.Duration
	willTopic    string
	willPayload  []byte
}

// windowPublisher is implemented by connections whose library publishes
// asynchronously and returns a token (paho.mqtt.golang): the sink keeps up
// to max_inflight tokens outstanding from one goroutine instead of running
// workers.
type windowPublisher interface {
	publishAsync(topic string, payload []byte, qos byte, retain bool) pubToken
}

// pubToken is the part of a paho.mqtt.golang token the sink uses.
type pubToken interface {
	Done() <-chan struct{}
	Error() error
}

// awaitToken waits for tok, ctx or the ack timer, whichever comes first.
func awaitToken(ctx context.Context, tok pubToken, timeout <-chan time.Time) error {
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return errAckTimeout
	}
}

// dialFunc connects within ctx (which carries connect_timeout).
type dialFunc func(ctx context.Context, o dialOptions) (conn, error)

// errRefused marks a publish the broker answered with a failure reason
// code: the connection is fine, the message was not accepted.
var errRefused = errors.New("refused by broker")

// errAckTimeout marks a publish whose PUBACK did not come within the ack
// timeout: the sink treats the connection as dead.
var errAckTimeout = errors.New("no PUBACK within the keep-alive interval")

// dialNet opens the TCP (and TLS) connection. Both libraries get an
// already-connected net.Conn so that ctx governs dialling and the TLS
// handshake in one place.
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
	td := &tls.Dialer{NetDialer: d, Config: cfg}
	return td.DialContext(ctx, "tcp", o.addr)
}

// conn5 is an MQTT 5 connection on paho.golang's low-level client. autopaho
// is not used on purpose: it reconnects and queues by itself, while the
// engine must see a lost connection as ErrDisconnected and drive the
// reconnect (with backoff and jitter) so that the batch stays in the
// durable buffer rather than in a library's memory queue.
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
		ClientID: o.clientID,
		// paho writes from several goroutines; tls.Conn and friends need
		// the lock.
		Conn:          packets.NewThreadSafeConn(nc),
		PacketTimeout: o.ackTimeout,
		OnClientError: func(err error) { c.setCause(err) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			reason := ""
			if d.Properties != nil {
				reason = d.Properties.ReasonString
			}
			c.setCause(fmt.Errorf("broker sent DISCONNECT, reason code 0x%02x %s", d.ReasonCode, reason))
		},
	})
	cp := &paho.Connect{
		ClientID:   o.clientID,
		KeepAlive:  keepAliveSeconds(o.keepAlive),
		CleanStart: true,
		WillMessage: &paho.WillMessage{
			Retain: true, QoS: 1, Topic: o.willTopic, Payload: o.willPayload,
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
		// paho has closed nc.
		if ca != nil {
			return nil, fmt.Errorf("CONNACK reason code 0x%02x: %w", ca.ReasonCode, err)
		}
		return nil, err
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

func (c *conn5) publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	resp, err := c.cli.Publish(ctx, &paho.Publish{QoS: qos, Retain: retain, Topic: topic, Payload: payload})
	switch {
	case err == nil:
		return nil
	case resp != nil && resp.ReasonCode >= 0x80:
		reason := ""
		if resp.Properties != nil {
			reason = resp.Properties.ReasonString
		}
		return fmt.Errorf("%w: PUBACK reason code 0x%02x %s", errRefused, resp.ReasonCode, reason)
	case errors.Is(err, paho.ErrInvalidArguments):
		return fmt.Errorf("%w: %w", errRefused, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return errAckTimeout // paho's PacketTimeout, not the caller's deadline
	}
	return err
}

func (c *conn5) close() error {
	return c.cli.Disconnect(&paho.Disconnect{ReasonCode: 0})
}

// keepAliveSeconds rounds up to whole seconds, as the protocol carries.
func keepAliveSeconds(d time.Duration) uint16 {
	s := (d + time.Second - 1) / time.Second
	if s > 65535 {
		s = 65535
	}
	return uint16(s)
}
