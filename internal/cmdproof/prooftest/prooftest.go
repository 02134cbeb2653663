// Package prooftest helps tests of signed MQTT commands: a client of the
// Mosquitto broker this machine runs, keys, and a recorder and a log
// handler that capture what a test must grep for secrets.
package prooftest

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/security"
)

// MosquittoAddr is the real broker of the end-to-end tests.
const MosquittoAddr = "127.0.0.1:1883"

// Wait bounds every wait of a test: it only catches a hang.
const Wait = 2 * time.Minute

// Keys for tests: hex and base64, both long enough.
const (
	AliceKeyHex = "a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11c"
	BobKeyB64   = "Ym9iLXNlY3JldC1ib2Itc2VjcmV0LWJvYi1zZWNyZXQtMTIzNDU2Nzg5MA=="
	// WrongKeyHex is what a forger guesses.
	WrongKeyHex = "0badbad00badbad00badbad00badbad00badbad00badbad00badbad00badbad0"
)

// RequireMosquitto skips the test when the broker does not answer, unless
// WEIR_REQUIRE_PEERS=1 says it must be there.
func RequireMosquitto(t testing.TB) {
	t.Helper()
	c, err := net.DialTimeout("tcp", MosquittoAddr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
		t.Fatalf("Mosquitto at %s does not answer and WEIR_REQUIRE_PEERS=1: %v", MosquittoAddr, err)
	}
	t.Skipf("Mosquitto at %s does not answer (%v)", MosquittoAddr, err)
}

// Prefix is a topic prefix no other test run uses.
func Prefix(t testing.TB) string {
	return "weirtest/" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/" + strconv.Itoa(os.Getpid())
}

// Client is an MQTT 3.1.1 client of Mosquitto that records what arrives
// on its subscriptions.
type Client struct {
	conn mqttclient.Conn
	Msgs chan mqttclient.Message
}

// Dial connects and subscribes to filters; the connection closes at the
// end of the test.
func Dial(t testing.TB, filters ...string) *Client {
	t.Helper()
	c := &Client{Msgs: make(chan mqttclient.Message, 256)}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	conn, err := mqttclient.Dial(ctx, mqttclient.Options{
		Version: mqttclient.Version311, Addr: MosquittoAddr, ClientID: "weir-prooftest-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		KeepAlive: 30 * time.Second, AckTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, Ordered: true,
		OnMessage: func(m mqttclient.Message) {
			select {
			case c.Msgs <- m:
			default:
			}
		},
	})
	if err != nil {
		t.Fatalf("dial Mosquitto: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c.conn = conn
	var subs []mqttclient.Subscription
	for _, f := range filters {
		subs = append(subs, mqttclient.Subscription{Topic: f, QoS: 1})
	}
	if len(subs) > 0 {
		if err := conn.Subscribe(ctx, subs); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
	}
	return c
}

// Publish sends payload at QoS 1.
func (c *Client) Publish(t testing.TB, topic string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if err := c.conn.Publish(ctx, topic, payload, 1, false); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// Next waits for the next message.
func (c *Client) Next(t testing.TB) mqttclient.Message {
	t.Helper()
	select {
	case m := <-c.Msgs:
		return m
	case <-time.After(Wait):
		t.Fatal("no message")
		return mqttclient.Message{}
	}
}

// Events is a security.Recorder that keeps every event.
type Events struct {
	mu  sync.Mutex
	evs []security.Event
}

var _ security.Recorder = (*Events)(nil)

// Record keeps ev.
func (e *Events) Record(_ context.Context, ev security.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

// All returns the events so far.
func (e *Events) All() []security.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]security.Event(nil), e.evs...)
}

// Log is a concurrency-safe buffer behind a JSON slog handler.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything logged.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger logs at debug level into l.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
