package mqttclient_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
)

const waitTimeout = 10 * time.Second

var versions = []string{mqttclient.Version5, mqttclient.Version311}

// inbox collects what OnMessage receives.
type inbox struct {
	mu   sync.Mutex
	msgs []mqttclient.Message
	got  chan struct{}
}

func newInbox() *inbox { return &inbox{got: make(chan struct{}, 1)} }

func (in *inbox) add(m mqttclient.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
	select {
	case in.got <- struct{}{}:
	default:
	}
}

// waitTopic waits until a message on topic has arrived and returns it.
func (in *inbox) waitTopic(t *testing.T, topic string) mqttclient.Message {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		in.mu.Lock()
		got := mqtttest.On(in.msgs, topic)
		in.mu.Unlock()
		if len(got) > 0 {
			return got[0]
		}
		select {
		case <-in.got:
		case <-deadline.C:
			t.Fatalf("no message on %s", topic)
		}
	}
}

func dial(t *testing.T, o mqttclient.Options) mqttclient.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := mqttclient.Dial(ctx, o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c
}

func options(b *mqtttest.Broker, version, clientID string) mqttclient.Options {
	return mqttclient.Options{Version: version, Addr: b.Addr(), ClientID: clientID,
		KeepAlive: 30 * time.Second, AckTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
}

// TestPublishSubscribe runs the operations every component uses against
// an embedded broker, with both protocol versions.
func TestPublishSubscribe(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			in := newInbox()
			o := options(b, v, "ps-"+v)
			o.OnMessage = in.add
			c := dial(t, o)
			if c.SessionPresent() {
				t.Error("session present on a clean start")
			}
			_, async := c.(mqttclient.AsyncPublisher)
			if async != (v == mqttclient.Version311) {
				t.Errorf("AsyncPublisher = %v", async)
			}
			ctx := context.Background()
			prefix := "ps/" + strings.ReplaceAll(v, ".", "")
			if err := c.Subscribe(ctx, []mqttclient.Subscription{{Topic: prefix + "/in/#", QoS: 1}}); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			for qos := range byte(2) {
				topic := prefix + "/out/" + string('0'+qos)
				if err := c.Publish(ctx, topic, []byte("hello"), qos, qos == 1); err != nil {
					t.Fatalf("Publish qos %d: %v", qos, err)
				}
				got := b.WaitFor(t, waitTimeout, topic, func(m []mqttclient.Message) bool { return len(mqtttest.On(m, topic)) == 1 })
				if m := mqtttest.On(got, topic)[0]; string(m.Payload) != "hello" || m.QoS != qos || m.Retain != (qos == 1) {
					t.Errorf("broker got %+v", m)
				}
			}
			b.Publish(t, prefix+"/in/x", []byte("to you"), 1, false)
			if m := in.waitTopic(t, prefix+"/in/x"); string(m.Payload) != "to you" || m.Retain {
				t.Errorf("received %+v", m)
			}
			if err := c.Close(); err != nil && v == mqttclient.Version5 {
				t.Errorf("Close: %v", err)
			}
			select {
			case <-c.Done():
			case <-time.After(waitTimeout):
				t.Fatal("Done not closed after Close")
			}
			if c.Cause() != nil {
				t.Errorf("Cause after Close = %v", c.Cause())
			}
		})
	}
}

// TestLostConnection: a dropped connection closes Done, records why, and
// the broker publishes the will.
func TestLostConnection(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			p := mqtttest.StartProxy(t, b.Addr())
			will := "will/" + strings.ReplaceAll(v, ".", "")
			o := options(b, v, "lost-"+v)
			o.Addr = p.Addr()
			o.Will = &mqttclient.Message{Topic: will, Payload: []byte("gone"), QoS: 1, Retain: true}
			c := dial(t, o)
			defer c.Close()
			p.Drop()
			select {
			case <-c.Done():
			case <-time.After(waitTimeout):
				t.Fatal("Done not closed after the connection dropped")
			}
			if c.Cause() == nil {
				t.Error("no cause for a lost connection")
			}
			got := b.WaitFor(t, waitTimeout, "the will", func(m []mqttclient.Message) bool { return len(mqtttest.On(m, will)) == 1 })
			if m := mqtttest.On(got, will)[0]; string(m.Payload) != "gone" || !m.Retain {
				t.Errorf("will %+v", m)
			}
			if err := c.Publish(context.Background(), "x", nil, 1, false); err == nil {
				t.Error("Publish on a lost connection succeeded")
			}
		})
	}
}

// TestAsyncWindow publishes through tokens, as the sinks' windows do.
func TestAsyncWindow(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	c := dial(t, options(b, mqttclient.Version311, "async"))
	defer c.Close()
	ap := c.(mqttclient.AsyncPublisher)
	var toks []mqttclient.Token
	for i := range 10 {
		toks = append(toks, ap.PublishAsync("async/"+string(rune('a'+i)), []byte{byte(i)}, 1, false))
	}
	for _, tok := range toks {
		if err := mqttclient.AwaitToken(context.Background(), tok, time.After(waitTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	got := b.WaitFor(t, waitTimeout, "10 messages", func(m []mqttclient.Message) bool { return len(mqtttest.OnPrefix(m, "async/")) == 10 })
	for i, m := range mqtttest.OnPrefix(got, "async/") {
		if m.Topic != "async/"+string(rune('a'+i)) {
			t.Fatalf("message %d on %s: out of order", i, m.Topic)
		}
	}
}

// TestAckTimeout: a PUBACK held by the broker past the ack timeout is
// ErrAckTimeout, with both versions.
func TestAckTimeout(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			stall := mqtttest.NewStallHook("stall/")
			b := mqtttest.Start(t, mqtttest.Options{Hooks: []mochi.Hook{stall}})
			o := options(b, v, "stall-"+v)
			o.AckTimeout = 200 * time.Millisecond
			c := dial(t, o)
			defer c.Close()
			defer close(stall.Release)
			err := c.Publish(context.Background(), "stall/x", []byte("x"), 1, false)
			if !errors.Is(err, mqttclient.ErrAckTimeout) {
				t.Fatalf("Publish = %v, want ErrAckTimeout", err)
			}
		})
	}
}

// TestDialHonoursContext: a listener that never answers CONNECT holds
// Dial only until ctx ends.
func TestDialHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	defer func() {
		_ = ln.Close()
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := mqttclient.Dial(ctx, mqttclient.Options{Version: v, Addr: ln.Addr().String(), ClientID: "x", KeepAlive: time.Minute, AckTimeout: time.Minute})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Dial = %v, want DeadlineExceeded", err)
			}
		})
	}
}

// TestServe runs one subscriber session: the handler gets messages once
// up is called, and Serve returns when ctx ends.
func TestServe(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	e := mqttclient.Endpoint{URL: b.URL("tcp"), ClientID: "serve"}
	broker := e.Broker()
	in := newInbox()
	up := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- mqttclient.Serve(ctx, &broker, []mqttclient.Subscription{{Topic: "cmd/#", QoS: 1}},
			func(sctx context.Context, c mqttclient.Conn) func(mqttclient.Message) {
				if c == nil || sctx.Err() != nil {
					t.Error("start got no live connection")
				}
				return in.add
			}, func() { close(up) })
	}()
	select {
	case <-up:
	case <-time.After(waitTimeout):
		t.Fatal("not subscribed")
	}
	b.Publish(t, "cmd/ack", []byte("{}"), 1, false)
	in.waitTopic(t, "cmd/ack")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve = %v", err)
	}
	bad := mqttclient.Endpoint{URL: "tcp://127.0.0.1:1", ClientID: "x", ConnectTimeout: time.Second}
	broker = bad.Broker()
	err := mqttclient.Serve(context.Background(), &broker, nil, nil, func() { t.Error("up without a broker") })
	if err == nil || !strings.HasPrefix(err.Error(), "connect tcp://127.0.0.1:1: ") {
		t.Fatalf("Serve without a broker = %v", err)
	}
}

// TestMaxPacketSize: an MQTT 5 connection reports the Maximum Packet Size
// of the broker's CONNACK, 0 when the broker announced none; a 3.1.1
// connection has no such property and does not implement PacketLimiter.
func TestMaxPacketSize(t *testing.T) {
	limited := mqtttest.Start(t, mqtttest.Options{MaxPacketSize: 4096})
	plain := mqtttest.Start(t, mqtttest.Options{})
	for _, tt := range []struct {
		name    string
		b       *mqtttest.Broker
		version string
		want    uint32
		limiter bool
	}{
		{"v5/announced", limited, mqttclient.Version5, 4096, true},
		{"v5/none", plain, mqttclient.Version5, 0, true},
		{"v3.1.1", limited, mqttclient.Version311, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			c, err := mqttclient.Dial(ctx, mqttclient.Options{Version: tt.version, Addr: tt.b.Addr(),
				ClientID: "max-" + strings.ReplaceAll(tt.name, "/", "-"), KeepAlive: 30 * time.Second, AckTimeout: waitTimeout})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pl, ok := c.(mqttclient.PacketLimiter)
			if ok != tt.limiter {
				t.Fatalf("implements PacketLimiter: %v, want %v", ok, tt.limiter)
			}
			if ok && pl.MaxPacketSize() != tt.want {
				t.Fatalf("MaxPacketSize %d, want %d", pl.MaxPacketSize(), tt.want)
			}
		})
	}
}
