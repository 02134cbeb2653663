package mqttclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/weir-edge/weir/internal/wirecount"
)

// Conn is one established MQTT connection, whatever the protocol version.
// It is never reconnected: when it ends, the component dials a new one, so
// that reconnect policy (backoff and jitter) stays with the component or
// the engine and a lost connection is always seen.
//
// Publish, Subscribe and Close are safe for concurrent use. None may be
// called from Options.OnMessage when messages are delivered in order (MQTT
// 5 always, 3.1.1 with Options.Ordered): the handler's goroutine is the
// one that would read the acknowledgement.
type Conn interface {
	// Publish sends one message and returns once it is confirmed: PUBACK
	// for QoS 1, written to the socket for QoS 0. payload must stay
	// unchanged until Publish returns; after an error the library may
	// still hold it. A refusal by the broker wraps ErrRefused; no
	// acknowledgement within the ack timeout is ErrAckTimeout.
	Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
	// Subscribe sends one SUBSCRIBE and fails, wrapping ErrRefused, if the
	// broker refuses any entry. Messages go to Options.OnMessage.
	Subscribe(ctx context.Context, subs []Subscription) error
	// SessionPresent reports whether the broker resumed a session.
	SessionPresent() bool
	// Done is closed when the connection has ended, lost or closed.
	Done() <-chan struct{}
	// Cause is why the connection ended; nil while it is up or after Close.
	Cause() error
	// Close sends DISCONNECT (so the broker discards the will), closes the
	// socket and waits for the library's goroutines.
	Close() error
}

// AsyncPublisher is implemented by connections whose library publishes
// asynchronously and returns a token (MQTT 3.1.1 on paho.mqtt.golang). The
// library writes publishes in call order from one goroutine, so a caller
// can keep a window of tokens outstanding, in order, instead of running
// workers.
//
// Caveat of the library: if the connection drops while a message is being
// handed over, the call blocks until the write timeout expires.
type AsyncPublisher interface {
	PublishAsync(topic string, payload []byte, qos byte, retain bool) Token
}

// PacketLimiter is implemented by connections whose broker can announce
// the largest packet it accepts: MQTT 5's CONNACK Maximum Packet Size
// (3.2.2.3.6). The client must not send a larger packet; a broker that
// gets one disconnects (0x95 packet too large), so a publisher checks each
// message against the limit before sending it. MQTT 3.1.1 has no such
// property: its connections do not implement PacketLimiter.
type PacketLimiter interface {
	// MaxPacketSize is the broker's limit for this connection, in bytes
	// of the whole packet; 0 when the broker announced none.
	MaxPacketSize() uint32
}

// Token is an asynchronous publish in flight.
type Token interface {
	Done() <-chan struct{}
	Error() error
}

// Message is an MQTT application message: one received, or the will.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Oversize, on a received message, is the size of the PUBLISH the
	// broker sent when it exceeded Options.MaxPacketSize: the payload was
	// read away unseen (Payload is empty) and the message is acknowledged,
	// so the broker does not send it again. 0 for every other message.
	Oversize int64
}

// Subscription is one SUBSCRIBE entry.
type Subscription struct {
	Topic string
	QoS   byte
}

// Options is what Dial needs. Broker.Options fills the connection part.
type Options struct {
	Version string // Version5 or Version311
	Addr    string // host:port
	TLS     *tls.Config
	// ClientID, Username and Password go into CONNECT; empty ones are left
	// out.
	ClientID, Username, Password string
	KeepAlive                    time.Duration
	// AckTimeout bounds the wait for each acknowledgement and ping.
	AckTimeout time.Duration
	// WriteTimeout bounds writing one packet (3.1.1 only).
	WriteTimeout time.Duration
	// KeepSession asks the broker to keep the session (clean start off);
	// SessionExpiry is how long it may (MQTT 5). Zero: a clean session.
	KeepSession   bool
	SessionExpiry time.Duration
	// Session carries MQTT 5 packet-id state across the connections of one
	// persistent session; nil gives each connection its own.
	Session *state.State
	// Will is registered at CONNECT; nil for none.
	Will *Message
	// OnMessage receives every inbound PUBLISH; it is acknowledged when the
	// handler returns. MQTT 5 calls it from one goroutine in arrival
	// order. MQTT 3.1.1 does so only with Ordered; without, each message
	// runs on a goroutine of its own and the handler may publish.
	OnMessage func(Message)
	Ordered   bool
	// WireBytes, when set, counts every byte written to the socket: MQTT
	// packets with their framing, TLS records and handshake, pings. One
	// counter may serve every connection of a component (it sums).
	WireBytes *wirecount.Counter
	// MaxPacketSize is the largest packet accepted from the broker, whole
	// packet in bytes (MaxPacketFor derives it from a payload limit); 0 is
	// DefaultMaxPacketSize. MQTT 5 announces it on CONNECT; for both
	// versions the client checks every packet's fixed header before the
	// library reads it: an oversized PUBLISH is skipped (Message.Oversize),
	// any other oversized packet ends the connection (PacketTooLargeError).
	MaxPacketSize uint32
}

var (
	// ErrRefused marks a request the broker answered with a failure
	// reason code: the connection is fine, the request was not accepted.
	ErrRefused = errors.New("refused by broker")
	// ErrAckTimeout marks an acknowledgement that did not come within the
	// ack timeout: treat the connection as dead.
	ErrAckTimeout = errors.New("no acknowledgement within the keep-alive interval")
	// errLost is a wait cut short by the connection's end.
	errLost = errors.New("connection lost")
)

// Dial connects within ctx, which bounds dialling, TLS and CONNECT/CONNACK.
func Dial(ctx context.Context, o Options) (Conn, error) {
	nc, err := dialNet(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = DefaultMaxPacketSize
	}
	lc := withLimit(nc, o.MaxPacketSize, o.Version != Version311)
	if o.Version == Version311 {
		return dial311(ctx, lc, o)
	}
	return dial5(ctx, lc, o)
}

// dialNet opens the TCP (and TLS) connection. Both libraries get an
// already-connected net.Conn so that ctx governs dialling and the TLS
// handshake in one place.
func dialNet(ctx context.Context, o Options) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: o.KeepAlive}
	var cfg *tls.Config
	if o.TLS != nil {
		cfg = o.TLS.Clone()
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(o.Addr)
			if err != nil {
				return nil, err
			}
			cfg.ServerName = host
		}
	}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	nc = o.WireBytes.Conn(withQuickAck(nc)) // under TLS: count what the socket carries
	if cfg == nil {
		return nc, nil
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return tc, nil
}

// AwaitToken waits for tok, ctx or timeout, whichever comes first, and
// returns ErrAckTimeout on the timeout.
func AwaitToken(ctx context.Context, tok Token, timeout <-chan time.Time) error {
	return await(ctx, tok, timeout, nil)
}

// await is AwaitToken that also gives up when lost is closed.
func await(ctx context.Context, tok Token, timeout <-chan time.Time, lost <-chan struct{}) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-lost:
		return errLost
	case <-timeout:
		return ErrAckTimeout
	}
}

// DisconnectError is the Cause of an MQTT 5 connection the broker ended
// with a DISCONNECT packet; its reason code tells a broker going away
// (0x8B) from one refusing what it was just sent (0x81 malformed packet,
// 0x82 protocol error, 0x90 topic name invalid, 0x95 packet too large,
// 0x99 payload format invalid).
type DisconnectError struct {
	ReasonCode byte
	Reason     string // the optional reason string
}

func (e *DisconnectError) Error() string {
	return "broker sent DISCONNECT, " + withReason(e.ReasonCode, e.Reason)
}

// Refuses reports whether the broker disconnected over the content of a
// packet it received (see DisconnectError), rather than for its own
// reasons.
func (e *DisconnectError) Refuses() bool {
	switch e.ReasonCode {
	case 0x81, 0x82, 0x90, 0x95, 0x99:
		return true
	}
	return false
}

// PubackError is an MQTT 5 PUBACK with a failure reason code; it wraps
// ErrRefused.
type PubackError struct {
	ReasonCode byte
	Reason     string
}

func (e *PubackError) Error() string {
	return ErrRefused.Error() + ": PUBACK " + withReason(e.ReasonCode, e.Reason)
}

func (e *PubackError) Unwrap() error { return ErrRefused }

// refusedSub is the error for a SUBACK failure code.
func refusedSub(topic string, rc byte) error {
	return fmt.Errorf("%w: SUBACK for %q: reason code 0x%02x", ErrRefused, topic, rc)
}

// withReason formats a reason code and the optional reason string.
func withReason(code byte, reason string) string {
	if reason == "" {
		return fmt.Sprintf("reason code 0x%02x", code)
	}
	return fmt.Sprintf("reason code 0x%02x %s", code, reason)
}

// causeBox records the first reason a connection ended; recorded is
// closed once there is one.
type causeBox struct {
	mu       sync.Mutex
	err      error
	recorded chan struct{}
}

func newCauseBox() causeBox { return causeBox{recorded: make(chan struct{})} }

func (c *causeBox) set(err error) {
	c.mu.Lock()
	if c.err == nil && err != nil {
		c.err = err
		close(c.recorded)
	}
	c.mu.Unlock()
}

// Cause is the first error recorded.
func (c *causeBox) Cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// keepAliveSeconds rounds up to whole seconds, as the protocol carries.
func keepAliveSeconds(d time.Duration) uint16 {
	s := (d + time.Second - 1) / time.Second
	return uint16(min(s, 65535))
}
