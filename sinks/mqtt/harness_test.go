package mqtt

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

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"

	weirbroker "github.com/weir-edge/weir/internal/broker"
)

// received is one message seen by the broker's inline subscriber.
type received struct {
	topic   string
	payload string
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
	notify chan struct{} // signalled (non-blocking) on every message
}

type brokerOpts struct {
	addr  string      // "" → 127.0.0.1:0
	tls   *tls.Config // nil → plain TCP
	users map[string]string
	// quiet skips the recording subscriber (benchmarks).
	quiet bool
	hooks []mochi.Hook
}

func startBroker(t testing.TB, o brokerOpts) *broker {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	srv := mochi.New(&mochi.Options{
		InlineClient: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if o.users == nil {
		if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
			t.Fatal(err)
		}
	} else {
		var rules auth.AuthRules
		for u, p := range o.users {
			rules = append(rules, auth.AuthRule{Username: auth.RString(u), Password: auth.RString(p), Allow: true})
		}
		err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Auth: rules, ACL: auth.ACLRules{{}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range o.hooks {
		if err := srv.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatal(err)
	}
	if o.tls != nil {
		ln = tls.NewListener(ln, o.tls)
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

// record runs in the publisher's broker goroutine: it must not block.
func (b *broker) record(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
	if strings.HasPrefix(pk.TopicName, "$") {
		return
	}
	b.mu.Lock()
	b.msgs = append(b.msgs, received{
		topic: pk.TopicName, payload: string(pk.Payload), qos: pk.FixedHeader.Qos, retain: pk.FixedHeader.Retain,
	})
	b.mu.Unlock()
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

var stopOnce sync.Map // *mochi.Server → struct{}

func (b *broker) stop() {
	if _, done := stopOnce.LoadOrStore(b.srv, struct{}{}); !done {
		_ = b.srv.Close()
	}
}

// url is the broker's address with scheme.
func (b *broker) url(scheme string) string { return scheme + "://" + b.addr }

// waitFor blocks until cond holds for the recorded messages or fails the
// test after timeout. It wakes on each new message, never polls.
func (b *broker) waitFor(t testing.TB, timeout time.Duration, what string, cond func([]received) bool) []received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		msgs := append([]received(nil), b.msgs...)
		b.mu.Unlock()
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

// on returns the messages recorded on topic.
func on(msgs []received, topic string) []received {
	var out []received
	for _, m := range msgs {
		if m.topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// onPrefix returns the messages whose topic starts with prefix.
func onPrefix(msgs []received, prefix string) []received {
	var out []received
	for _, m := range msgs {
		if strings.HasPrefix(m.topic, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// retained returns what a new subscriber to topic would get now.
func (b *broker) retained(t testing.TB, topic string) []received {
	t.Helper()
	var out []received
	var mu sync.Mutex
	err := b.srv.Subscribe(topic, 99, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		mu.Lock()
		out = append(out, received{topic: pk.TopicName, payload: string(pk.Payload), retain: pk.FixedHeader.Retain})
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

func dump(msgs []received) string {
	var buf bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&buf, "  %s qos=%d retain=%v %s\n", m.topic, m.qos, m.retain, m.payload)
	}
	return buf.String()
}

// stallHook holds the first PUBLISH whose topic starts with prefix inside
// the broker, before its PUBACK, until release is closed: a Write is then
// deterministically in flight.
type stallHook struct {
	mochi.HookBase
	prefix  string
	once    sync.Once
	arrived chan struct{}
	release chan struct{}
}

func newStallHook(prefix string) *stallHook {
	return &stallHook{prefix: prefix, arrived: make(chan struct{}), release: make(chan struct{})}
}

func (h *stallHook) ID() string { return "stall" }

func (h *stallHook) Provides(b byte) bool { return b == mochi.OnPublish }

func (h *stallHook) OnPublish(_ *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if strings.HasPrefix(pk.TopicName, h.prefix) {
		h.once.Do(func() {
			close(h.arrived)
			<-h.release
		})
	}
	return pk, nil
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
