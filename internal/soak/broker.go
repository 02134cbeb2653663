package soak

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-edge/weir/internal/broker"
)

// Broker is an embedded MQTT broker the harness can kill and restart on
// the same loopback port. Every message a client publishes under the
// watched prefix is handed to observe before the broker acknowledges it,
// so nothing the gateway was told is delivered escapes the check — not
// even across a restart, when no subscriber could be connected yet.
type Broker struct {
	addr    string
	prefix  []byte
	observe func(topic string, payload []byte)
	log     *slog.Logger

	mu  sync.Mutex
	srv *mqtt.Server
}

// NewBroker returns a stopped broker for 127.0.0.1 on a free port.
func NewBroker(prefix string, observe func(topic string, payload []byte), log *slog.Logger) (*Broker, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("soak broker: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &Broker{addr: addr, prefix: []byte(prefix + "/"), observe: observe, log: log}, nil
}

// Addr is where the broker listens when it runs.
func (b *Broker) Addr() string { return b.addr }

// Start runs the broker; it is a no-op when it runs already.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		return fmt.Errorf("soak broker: %w", err)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacket // the oversize poison is refused
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return fmt.Errorf("soak broker: %w", err)
	}
	if err := srv.AddHook(&watchHook{b: b}, nil); err != nil {
		ln.Close()
		return fmt.Errorf("soak broker: %w", err)
	}
	if err := srv.AddListener(broker.NewListener("tcp", ln)); err != nil {
		ln.Close()
		return fmt.Errorf("soak broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		ln.Close()
		return fmt.Errorf("soak broker: %w", err)
	}
	b.srv = srv
	return nil
}

// Stop kills the broker: its clients lose their connections and their
// sessions (mochi keeps them in memory only).
func (b *Broker) Stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Publish sends a message from the broker's inline client; false when the
// broker is down.
func (b *Broker) Publish(topic string, payload []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		return false
	}
	return b.srv.Publish(topic, payload, false, 1) == nil
}

// watchHook hands every published message under the prefix to observe.
type watchHook struct {
	mqtt.HookBase
	b *Broker
}

func (h *watchHook) ID() string { return "weir-soak-watch" }

func (h *watchHook) Provides(b byte) bool { return b == mqtt.OnPublish }

func (h *watchHook) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if bytes.HasPrefix([]byte(pk.TopicName), h.b.prefix) {
		h.b.observe(pk.TopicName[len(h.b.prefix):], pk.Payload)
	}
	return pk, nil
}
