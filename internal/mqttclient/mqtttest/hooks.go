package mqtttest

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// StallHook holds the first PUBLISH whose topic starts with a prefix
// inside the broker, before its PUBACK, until Release is closed: a publish
// is then deterministically in flight. Arrived is closed when it is held.
type StallHook struct {
	mochi.HookBase
	prefix  string
	once    sync.Once
	Arrived chan struct{}
	Release chan struct{}
}

// NewStallHook returns a hook for Options.Hooks.
func NewStallHook(prefix string) *StallHook {
	return &StallHook{prefix: prefix, Arrived: make(chan struct{}), Release: make(chan struct{})}
}

func (h *StallHook) ID() string { return "mqtttest-stall" }

func (h *StallHook) Provides(b byte) bool { return b == mochi.OnPublish }

func (h *StallHook) OnPublish(_ *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if strings.HasPrefix(pk.TopicName, h.prefix) {
		h.once.Do(func() {
			close(h.Arrived)
			<-h.Release
		})
	}
	return pk, nil
}

// Proxy forwards TCP connections to a broker and can cut them all at
// once, as a network failure would: the broker sees the socket close
// without a DISCONNECT and publishes the last will.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// StartProxy listens on 127.0.0.1:0 and forwards to target until the test
// ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Drop()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// Drop cuts every proxied connection.
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// maxPacketHook announces the broker's maximum packet size in the CONNACK
// of MQTT 5 clients: mochi enforces Capabilities.MaximumPacketSize on what
// it reads but does not put it in the CONNACK.
type maxPacketHook struct {
	mochi.HookBase
	size uint32
}

func (h *maxPacketHook) ID() string           { return "mqtttest-max-packet" }
func (h *maxPacketHook) Provides(b byte) bool { return b == mochi.OnPacketEncode }
func (h *maxPacketHook) OnPacketEncode(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && cl.Properties.ProtocolVersion == 5 && pk.ReasonCode < 0x80 {
		pk.Properties.MaximumPacketSize = h.size
	}
	return pk
}
