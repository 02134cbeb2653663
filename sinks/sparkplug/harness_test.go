package sparkplug

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"

	weirbroker "github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/internal/sparkplugb"
)

// received is one message seen by the broker's inline subscriber.
type received struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
}

// broker is an embedded mochi-mqtt broker on 127.0.0.1 with an inline
// subscriber on "#" that records every message.
type broker struct {
	srv  *mochi.Server
	addr string

	mu     sync.Mutex
	msgs   []received
	notify chan struct{}
}

type brokerOpts struct {
	addr  string
	quiet bool
}

func startBroker(t testing.TB, o brokerOpts) *broker {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatal(err)
	}
	l := weirbroker.NewListener("t", ln)
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &broker{srv: srv, addr: l.Address(), notify: make(chan struct{}, 1)}
	if !o.quiet {
		if err := srv.Subscribe("#", 1, b.record); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(b.stop)
	return b
}

func (b *broker) record(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
	if strings.HasPrefix(pk.TopicName, "$") {
		return
	}
	b.mu.Lock()
	b.msgs = append(b.msgs, received{
		topic: pk.TopicName, payload: bytes.Clone(pk.Payload), qos: pk.FixedHeader.Qos, retain: pk.FixedHeader.Retain,
	})
	b.mu.Unlock()
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

var stopOnce sync.Map

func (b *broker) stop() {
	if _, done := stopOnce.LoadOrStore(b.srv, struct{}{}); !done {
		_ = b.srv.Close()
	}
}

func (b *broker) url() string { return "tcp://" + b.addr }

func (b *broker) snapshot() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

// publish sends a message as the broker's inline client (a host
// application in the tests).
func (b *broker) publish(t testing.TB, topic string, payload []byte, retain bool) {
	t.Helper()
	if err := b.srv.Publish(topic, payload, retain, 1); err != nil {
		t.Fatal(err)
	}
}

// waitFor blocks until cond holds for the recorded messages or fails the
// test after timeout. It wakes on each new message.
func (b *broker) waitFor(t testing.TB, timeout time.Duration, what string, cond func([]received) bool) []received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		msgs := b.snapshot()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-b.notify:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; got %d messages:\n%s", what, len(msgs), dump(msgs))
		}
	}
}

// spMsg is a recorded Sparkplug message, decoded.
type spMsg struct {
	topic   sparkplugb.Topic
	raw     string
	qos     byte
	retain  bool
	payload *sparkplugb.Payload
}

// sparkplugMsgs decodes the recorded messages of edge node group/edge
// (NCMD and STATE excluded: those are the tests' own).
func sparkplugMsgs(t testing.TB, msgs []received, group, edge string) []spMsg {
	t.Helper()
	var out []spMsg
	for _, m := range msgs {
		tp, err := sparkplugb.ParseTopic(m.topic)
		if err != nil || tp.Group != group || tp.EdgeNode != edge || tp.Type == sparkplugb.NCMD || tp.Type == sparkplugb.DCMD {
			continue
		}
		p, err := sparkplugb.Decode(m.payload)
		if err != nil {
			t.Fatalf("%s: %v", m.topic, err)
		}
		out = append(out, spMsg{topic: tp, raw: m.topic, qos: m.qos, retain: m.retain, payload: p})
	}
	return out
}

func ofType(msgs []spMsg, types ...sparkplugb.MessageType) []spMsg {
	var out []spMsg
	for _, m := range msgs {
		for _, ty := range types {
			if m.topic.Type == ty {
				out = append(out, m)
			}
		}
	}
	return out
}

func dump(msgs []received) string {
	var buf bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&buf, "  %s qos=%d retain=%v %d bytes\n", m.topic, m.qos, m.retain, len(m.payload))
	}
	return buf.String()
}

// proxy forwards TCP connections to a broker and can cut them all at once,
// as a network failure would: the broker sees the socket close without a
// DISCONNECT and publishes the last will.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.drop()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
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

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// drop cuts every proxied connection.
func (p *proxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
