package mqtt

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"

	weirbroker "github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/model"
)

// waitTimeout bounds every wait for something to happen over the network.
const waitTimeout = 10 * time.Second

// received is one message seen by the broker's inline subscriber.
type received struct {
	topic   string
	payload []byte
	retain  bool
}

// broker is an embedded mochi-mqtt broker on 127.0.0.1:0 that records
// every message and signals every SUBSCRIBE.
type broker struct {
	srv  *mochi.Server
	addr string
	ln   *weirbroker.Listener

	mu     sync.Mutex
	msgs   []received
	subs   int
	notify chan struct{}
}

// subHook counts SUBSCRIBE packets, so tests wait for a source to be
// subscribed instead of sleeping.
type subHook struct {
	mochi.HookBase
	b *broker
}

func (h *subHook) ID() string           { return "subs" }
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

func startBroker(t testing.TB) *broker { return startBrokerWith(t, brokerOpts{}) }

type brokerOpts struct {
	tls   *tls.Config       // nil: plain TCP
	users map[string]string // nil: anonymous clients allowed
}

func startBrokerWith(t testing.TB, o brokerOpts) *broker {
	t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := &broker{srv: srv, notify: make(chan struct{}, 1)}
	if o.users == nil {
		if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
			t.Fatal(err)
		}
	} else {
		var rules auth.AuthRules
		for u, p := range o.users {
			rules = append(rules, auth.AuthRule{Username: auth.RString(u), Password: auth.RString(p), Allow: true})
		}
		if err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Auth: rules, ACL: auth.ACLRules{{}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.AddHook(&subHook{b: b}, nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
	b.addr, b.ln = l.Address(), l
	if err := srv.Subscribe("#", 1, b.record); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

func (b *broker) signal() {
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

func (b *broker) record(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
	b.mu.Lock()
	b.msgs = append(b.msgs, received{topic: pk.TopicName, payload: bytes.Clone(pk.Payload), retain: pk.FixedHeader.Retain})
	b.mu.Unlock()
	b.signal()
}

func (b *broker) url() string { return "tcp://" + b.addr }

// publish sends a message from the broker's inline client.
func (b *broker) publish(t testing.TB, topic string, payload []byte, qos byte) {
	t.Helper()
	if err := b.srv.Publish(topic, payload, false, qos); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// waitSubscribed waits until n SUBSCRIBE packets have arrived in total.
func (b *broker) waitSubscribed(t testing.TB, n int) {
	t.Helper()
	b.waitFor(t, fmt.Sprintf("%d subscribes", n), func([]received) bool { return b.subs >= n })
}

// waitFor blocks until cond holds (called with b.mu held) or fails.
func (b *broker) waitFor(t testing.TB, what string, cond func([]received) bool) []received {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok := cond(b.msgs)
		msgs := append([]received(nil), b.msgs...)
		b.mu.Unlock()
		if ok {
			return msgs
		}
		select {
		case <-b.notify:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; broker saw %d messages", what, len(msgs))
		}
	}
}

func onTopic(msgs []received, topic string) []received {
	var out []received
	for _, m := range msgs {
		if m.topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// collector is a pipeline.Emitter that records every sample.
type collector struct {
	mu      sync.Mutex
	samples []model.Sample
	batches int
	notify  chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) Emit(_ context.Context, batch []model.Sample) error {
	c.mu.Lock()
	c.samples = append(c.samples, batch...)
	c.batches++
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) snapshot() []model.Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]model.Sample(nil), c.samples...)
}

// waitN waits until at least n samples have been emitted and returns them.
func (c *collector) waitN(t testing.TB, n int) []model.Sample {
	t.Helper()
	return c.waitFor(t, fmt.Sprintf("%d samples", n), func(s []model.Sample) bool { return len(s) >= n })
}

func (c *collector) waitFor(t testing.TB, what string, cond func([]model.Sample) bool) []model.Sample {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		s := c.snapshot()
		if cond(s) {
			return s
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; got %d samples:\n%s", what, len(s), dumpSamples(s))
		}
	}
}

func dumpSamples(ss []model.Sample) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "  %s = %s (%s) ts=%d hist=%v\n", s.Path, s.Value, s.Quality, s.SourceTime, s.Historical)
	}
	return b.String()
}

// byPath returns the last sample of each path.
func byPath(ss []model.Sample) map[string]model.Sample {
	m := make(map[string]model.Sample, len(ss))
	for _, s := range ss {
		m[s.Path] = s
	}
	return m
}

// runSource builds and runs a source until the test ends.
func runSource(t testing.TB, cfg Config, out *collector, opts ...func(*Source)) *Source {
	t.Helper()
	s, _ := startSource(t, cfg, out, opts...)
	return s
}

// runSourceStoppable is runSource that also returns a function stopping
// the source and waiting for Run to return (idempotent).
func runSourceStoppable(t testing.TB, cfg Config, out *collector, opts ...func(*Source)) func() {
	t.Helper()
	_, stop := startSource(t, cfg, out, opts...)
	return stop
}

func startSource(t testing.TB, cfg Config, out *collector, opts ...func(*Source)) (*Source, func()) {
	t.Helper()
	s, err := New(cfg, testLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.policy.Initial, s.policy.Max = 10*time.Millisecond, 100*time.Millisecond
	for _, o := range opts {
		o(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// fixedClock is the arrival time tests see.
var fixedClock = time.Date(2024, 11, 25, 21, 0, 0, 0, time.UTC)

func withClock(s *Source) { s.now = func() time.Time { return fixedClock } }

// dialCounter wraps the source's dial function and reports every attempt
// (nil error for a success).
func dialCounter(ch chan<- error) func(*Source) {
	return func(s *Source) {
		inner := s.dial
		s.dial = func(ctx context.Context, o dialOptions) (conn, error) {
			c, err := inner(ctx, o)
			select {
			case ch <- err:
			default:
			}
			return c, err
		}
	}
}

// testLogger discards logs unless WEIR_TEST_LOG=1.
func testLogger() *slog.Logger {
	if os.Getenv("WEIR_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
