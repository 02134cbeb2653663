// Package mqtttest is the embedded MQTT broker the tests of every MQTT
// component share: a mochi-mqtt broker on a loopback port that records
// every message, counts SUBSCRIBEs, can hold a PUBLISH before its PUBACK
// (StallHook) and can be reached through a proxy that cuts connections
// the way a network failure does (Proxy). Waits wake on each event; none
// polls or sleeps.
package mqtttest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"

	weirbroker "github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/internal/mqttclient"
)

// Message is a message the broker saw.
type Message = mqttclient.Message

// Options shape the broker; the zero value is an anonymous plain-TCP
// broker on 127.0.0.1:0 that records everything.
type Options struct {
	Addr  string            // "" → 127.0.0.1:0
	TLS   *tls.Config       // nil → plain TCP
	Users map[string]string // nil → anonymous clients allowed
	// Quiet skips the recording subscriber (benchmarks).
	Quiet bool
	Hooks []mochi.Hook
	// MaxPacketSize, when not 0, is the largest packet the broker takes:
	// it announces it in the CONNACK (MQTT 5) and disconnects a client
	// that sends a larger one (0x95 packet too large).
	MaxPacketSize uint32
}

// Broker is a running embedded broker, stopped when the test ends.
type Broker struct {
	srv  *mochi.Server
	ln   *weirbroker.Listener
	addr string

	mu     sync.Mutex
	msgs   []Message
	subs   int           // SUBSCRIBE packets from clients (not the recorder)
	notify chan struct{} // signalled (non-blocking) on every event
}

// Start starts a broker and registers its Stop with t.Cleanup.
func Start(t testing.TB, o Options) *Broker {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := &Broker{srv: srv, notify: make(chan struct{}, 1)}
	hooks := append([]mochi.Hook{&subHook{b: b}}, o.Hooks...)
	if o.MaxPacketSize > 0 {
		srv.Options.Capabilities.MaximumPacketSize = o.MaxPacketSize
		hooks = append(hooks, &maxPacketHook{size: o.MaxPacketSize})
	}
	if o.Users == nil {
		if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
			t.Fatal(err)
		}
	} else {
		var rules auth.AuthRules
		for u, p := range o.Users {
			rules = append(rules, auth.AuthRule{Username: auth.RString(u), Password: auth.RString(p), Allow: true})
		}
		if err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Auth: rules, ACL: auth.ACLRules{{}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range hooks {
		if err := srv.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if o.TLS != nil {
		ln = tls.NewListener(ln, o.TLS)
	}
	b.ln = weirbroker.NewListener("t", ln)
	if err := srv.AddListener(b.ln); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b.addr = b.ln.Address()
	if !o.Quiet {
		if err := srv.Subscribe("#", 1, b.record); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(b.Stop)
	return b
}

// subHook counts SUBSCRIBE packets, so tests wait for a client to be
// subscribed instead of sleeping.
type subHook struct {
	mochi.HookBase
	b *Broker
}

func (h *subHook) ID() string           { return "mqtttest-subs" }
func (h *subHook) Provides(b byte) bool { return b == mochi.OnSubscribed }
func (h *subHook) OnSubscribed(cl *mochi.Client, _ packets.Packet, _ []byte) {
	if cl.Net.Inline {
		return // the recording subscriber
	}
	h.b.mu.Lock()
	h.b.subs++
	h.b.mu.Unlock()
	h.b.signal()
}

func (b *Broker) signal() {
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// record runs in the publisher's broker goroutine: it must not block.
func (b *Broker) record(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
	if strings.HasPrefix(pk.TopicName, "$") {
		return
	}
	b.mu.Lock()
	b.msgs = append(b.msgs, Message{
		Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload), QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain,
	})
	b.mu.Unlock()
	b.signal()
}

var stopped sync.Map // *mochi.Server → struct{}

// Stop closes the broker and every client connection; it may be called
// more than once.
func (b *Broker) Stop() {
	if _, done := stopped.LoadOrStore(b.srv, struct{}{}); !done {
		_ = b.srv.Close()
	}
}

// Addr is host:port with the real port.
func (b *Broker) Addr() string { return b.addr }

// URL is the address with scheme ("tcp", "mqtts", …).
func (b *Broker) URL(scheme string) string { return scheme + "://" + b.addr }

// Server is the mochi server, e.g. to subscribe inline.
func (b *Broker) Server() *mochi.Server { return b.srv }

// DropAll cuts every client connection without DISCONNECT: wills fire.
func (b *Broker) DropAll() { b.ln.DropAll() }

// Messages is a copy of what was recorded so far.
func (b *Broker) Messages() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Message(nil), b.msgs...)
}

// Publish sends a message from the broker's inline client.
func (b *Broker) Publish(t testing.TB, topic string, payload []byte, qos byte, retain bool) {
	t.Helper()
	if err := b.srv.Publish(topic, payload, retain, qos); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// WaitFor blocks until cond holds for the recorded messages and returns
// them, or fails the test after timeout.
func (b *Broker) WaitFor(t testing.TB, timeout time.Duration, what string, cond func([]Message) bool) []Message {
	t.Helper()
	var msgs []Message
	b.wait(t, timeout, what, func() bool {
		msgs = append(msgs[:0], b.msgs...)
		return cond(msgs)
	}, func() string { return fmt.Sprintf("got %d messages:\n%s", len(msgs), Dump(msgs)) })
	return msgs
}

// WaitSubscribed blocks until n SUBSCRIBE packets have arrived in total.
func (b *Broker) WaitSubscribed(t testing.TB, timeout time.Duration, n int) {
	t.Helper()
	b.wait(t, timeout, fmt.Sprintf("%d subscribes", n), func() bool { return b.subs >= n },
		func() string { return fmt.Sprintf("saw %d", b.subs) })
}

// wait checks cond (with b.mu held) on every event until it holds.
func (b *Broker) wait(t testing.TB, timeout time.Duration, what string, cond func() bool, got func() string) {
	t.Helper()
	// The caller's figure is how long it should take; a loaded CI machine
	// takes longer, and a wait fails only on a hang.
	timeout = max(timeout, 2*time.Minute)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok := cond()
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-b.notify:
		case <-deadline.C:
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Fatalf("timed out waiting for %s; %s", what, got())
		}
	}
}

// Retained returns what a new subscriber to topic would get now.
func (b *Broker) Retained(t testing.TB, topic string) []Message {
	t.Helper()
	var out []Message
	var mu sync.Mutex
	err := b.srv.Subscribe(topic, 99, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		mu.Lock()
		out = append(out, Message{Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload), Retain: pk.FixedHeader.Retain})
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.srv.Unsubscribe(topic, 99)
	mu.Lock()
	defer mu.Unlock()
	return out
}

// On returns the messages on topic.
func On(msgs []Message, topic string) []Message {
	var out []Message
	for _, m := range msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// OnPrefix returns the messages whose topic starts with prefix.
func OnPrefix(msgs []Message, prefix string) []Message {
	var out []Message
	for _, m := range msgs {
		if strings.HasPrefix(m.Topic, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// Dump lists msgs one a line for failure messages; binary payloads are
// shown by their size.
func Dump(msgs []Message) string {
	var buf bytes.Buffer
	for _, m := range msgs {
		p := string(m.Payload)
		if !utf8.Valid(m.Payload) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 }) {
			p = fmt.Sprintf("%d bytes", len(m.Payload))
		}
		fmt.Fprintf(&buf, "  %s qos=%d retain=%v %s\n", m.Topic, m.QoS, m.Retain, p)
	}
	return buf.String()
}
