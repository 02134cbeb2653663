package mqtt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// TestBrokerMaxPacketSize: a broker that announces a Maximum Packet Size
// in its CONNACK (MQTT 5) disconnects a client that sends a larger packet
// (0x95). The sink must not send one: 50 samples too large for the limit,
// interleaved with 50 good ones, come back rejected as oversize from the
// first Write, the good ones arrive (in batch mode in split messages), and
// the sink never reconnects. Before the limit was read, each oversize
// sample cost a DISCONNECT and a reconnect.
func TestBrokerMaxPacketSize(t *testing.T) {
	const limit = 1024
	b := mqtttest.Start(t, mqtttest.Options{MaxPacketSize: limit})
	for n, tt := range []struct {
		mode string
		qos  int
	}{
		{ModeSample, 1},
		{ModeSample, 0},
		{ModeBatch, 1},
	} {
		t.Run(fmt.Sprintf("%s/qos%d", tt.mode, tt.qos), func(t *testing.T) {
			prefix := fmt.Sprintf("weir/max%d", n)
			s := newSink(t, Config{
				Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: fmt.Sprintf("gw-max%d", n)},
				QoS:    intp(tt.qos), TopicPrefix: prefix, Mode: tt.mode, MaxInflight: 8})
			// All on one asset, so that batch mode has one message far
			// over the limit to split: 50 good samples of ~100 bytes of
			// JSON each, and 50 whose value alone is over the limit.
			var batch []model.Sample
			want := map[int]bool{}
			for i := range 100 {
				smp := model.Sample{Path: fmt.Sprintf("plant/a/good%d", i), Value: model.Int(int64(i)),
					SourceTime: 1e15, EdgeTime: 1e15, Seq: uint64(i + 1)}
				if i%2 == 1 {
					smp.Path = fmt.Sprintf("plant/a/big%d", i)
					smp.Value = model.String(strings.Repeat("x", limit))
					want[i] = true
				}
				batch = append(batch, smp)
			}
			err := s.Write(context.Background(), batch)
			var rej *pipeline.RejectedError
			if !errors.As(err, &rej) {
				t.Fatalf("Write: %v; want the 50 oversize samples rejected", err)
			}
			for _, r := range rej.Rejected {
				if !want[r.Index] || r.Cause != pipeline.CauseOversize {
					t.Errorf("rejected index %d as %s (%v); want only the odd indexes, as oversize", r.Index, r.Cause, r.Err)
				}
				delete(want, r.Index)
			}
			if len(want) != 0 || len(rej.Rejected) != 50 {
				t.Fatalf("%d rejections; not rejected: %v", len(rej.Rejected), want)
			}
			msgs := b.WaitFor(t, waitTimeout, "the 50 good samples", func(m []mqtttest.Message) bool {
				return len(decodeReceived(t, m, prefix, tt.mode)) >= 50
			})
			got := decodeReceived(t, msgs, prefix, tt.mode)
			if len(got) != 50 {
				t.Fatalf("received %d samples, want 50", len(got))
			}
			seen := map[string]bool{}
			for i, smp := range got {
				seen[smp.Path] = true
				// Batch mode: one topic, so the split messages keep
				// batch order.
				if want := fmt.Sprintf("plant/a/good%d", 2*i); tt.mode == ModeBatch && smp.Path != want {
					t.Fatalf("sample %d is %s, want %s", i, smp.Path, want)
				}
			}
			for i := 0; i < 100; i += 2 {
				if !seen[fmt.Sprintf("plant/a/good%d", i)] {
					t.Fatalf("good sample %d did not arrive", i)
				}
			}
			if tt.mode == ModeBatch && len(mqtttest.OnPrefix(msgs, prefix+"/plant/")) < 2 {
				t.Fatal("batch mode: the asset's message was not split")
			}
			st := s.Status().Counters
			if st["connects"] != 1 || st["disconnects"] != 0 {
				t.Fatalf("connects %d, disconnects %d; want 1 and 0", st["connects"], st["disconnects"])
			}
		})
	}
}

// TestPublishSize checks the packet size bound against MQTT 5's encoding
// of a PUBLISH with no properties: the remaining length takes one more
// byte from 128, 16,384 and 2,097,152 bytes on.
func TestPublishSize(t *testing.T) {
	for _, tt := range []struct {
		topic   string
		payload int
		want    int
	}{
		{"a", 0, 1 + 1 + 2 + 1 + 2 + 1},
		{"a/b", 10, 1 + 1 + 2 + 3 + 2 + 1 + 10},
		{"", 122, 1 + 1 + 127}, // remaining length 127: one byte
		{"", 123, 1 + 2 + 128}, // 128: two bytes
		{"", 16378, 1 + 2 + 16383},
		{"", 16379, 1 + 3 + 16384},
		{"", 2097147, 1 + 4 + 2097152},
	} {
		if got := publishSize(tt.topic, tt.payload); got != tt.want {
			t.Errorf("publishSize(%q, %d) = %d, want %d", tt.topic, tt.payload, got, tt.want)
		}
	}
}

// tooLargeHook makes the broker answer a PUBLISH to a topic ending in
// "/big" with DISCONNECT 0x95 packet too large, as a broker does that
// enforces a limit it did not announce.
type tooLargeHook struct {
	mochi.HookBase
	srv *mochi.Server // set before any client connects
}

func (h *tooLargeHook) ID() string           { return "test-too-large" }
func (h *tooLargeHook) Provides(b byte) bool { return b == mochi.OnPublish }
func (h *tooLargeHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if strings.HasSuffix(pk.TopicName, "/big") {
		_ = h.srv.DisconnectClient(cl, packets.ErrPacketTooLarge)
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

// TestDisconnectTooLargeIsOversize: a message the broker disconnects over
// with 0x95 is isolated and rejected as oversize, the cause a PUBACK 0x95
// gets too, not as malformed.
func TestDisconnectTooLargeIsOversize(t *testing.T) {
	h := &tooLargeHook{}
	b := mqtttest.Start(t, mqtttest.Options{Hooks: []mochi.Hook{h}})
	h.srv = b.Server()
	s := newSink(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "gw-too-large"}, TopicPrefix: "weir/tl"})
	batch := []model.Sample{
		{Path: "a/ok1", Value: model.Int(1), SourceTime: 1e15, EdgeTime: 1e15, Seq: 1},
		{Path: "a/big", Value: model.Int(2), SourceTime: 1e15, EdgeTime: 1e15, Seq: 2},
		{Path: "a/ok2", Value: model.Int(3), SourceTime: 1e15, EdgeTime: 1e15, Seq: 3},
	}
	ctx := context.Background()
	var rej *pipeline.RejectedError
	for writes := 1; ; writes++ {
		err := s.Write(ctx, batch)
		if errors.As(err, &rej) {
			break
		}
		if err == nil || writes >= 2 || !errors.Is(err, pipeline.ErrDisconnected) {
			t.Fatalf("write %d: %v; want a disconnect, then the message isolated", writes, err)
		}
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(rej.Rejected) != 1 || rej.Rejected[0].Index != 1 || rej.Rejected[0].Cause != pipeline.CauseOversize {
		t.Fatalf("rejected %v, want index 1 as oversize", rej)
	}
}

// TestDisconnectCause: a broker's 0x95 "packet too large" is the same
// cause, oversize, whether it comes as a DISCONNECT or as a PUBACK.
func TestDisconnectCause(t *testing.T) {
	for _, tt := range []struct {
		de   *mqttclient.DisconnectError
		want string
	}{
		{nil, pipeline.CauseMalformed}, // MQTT 3.1.1: the socket closed
		{&mqttclient.DisconnectError{ReasonCode: 0x81}, pipeline.CauseMalformed},
		{&mqttclient.DisconnectError{ReasonCode: 0x90}, pipeline.CauseMalformed},
		{&mqttclient.DisconnectError{ReasonCode: 0x95}, pipeline.CauseOversize},
	} {
		if got := disconnectCause(tt.de); got != tt.want {
			t.Errorf("disconnectCause(%v) = %s, want %s", tt.de, got, tt.want)
		}
	}
	if cause, _ := pubackCause(&mqttclient.PubackError{ReasonCode: 0x95}); cause != pipeline.CauseOversize {
		t.Errorf("pubackCause(0x95) = %s, want oversize", cause)
	}
}

// deadLetterRecorder is an engine.DeadLetters that keeps what it is given
// and signals each Put, so a test waits on it instead of polling.
type deadLetterRecorder struct {
	mu    sync.Mutex
	cause map[string][]model.Sample
	put   chan struct{}
}

func (d *deadLetterRecorder) Put(_ context.Context, cause string, samples []model.Sample) error {
	d.mu.Lock()
	d.cause[cause] = append(d.cause[cause], samples...)
	d.mu.Unlock()
	select {
	case d.put <- struct{}{}:
	default:
	}
	return nil
}

func (d *deadLetterRecorder) Stats() map[string]buffer.Stats { return nil }

// count reports the samples dead-lettered under cause and in all.
func (d *deadLetterRecorder) count(cause string) (n, all int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c, s := range d.cause {
		all += len(s)
		if c == cause {
			n = len(s)
		}
	}
	return n, all
}

// TestBrokerMaxPacketSizeThroughEngine is TestBrokerMaxPacketSize end to
// end: the engine dead-letters the 50 oversize samples under oversize,
// the 50 good ones arrive, and the sink connects once.
func TestBrokerMaxPacketSizeThroughEngine(t *testing.T) {
	const limit = 1024
	b := mqtttest.Start(t, mqtttest.Options{MaxPacketSize: limit})
	s := newSink(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "gw-max-engine"}, TopicPrefix: "weir/maxe"})
	var batch []model.Sample
	for i := range 100 {
		smp := model.Sample{Path: fmt.Sprintf("plant/a/good%d", i), Value: model.Int(int64(i)), SourceTime: 1e15, EdgeTime: 1e15}
		if i%2 == 1 {
			smp.Path, smp.Value = fmt.Sprintf("plant/a/big%d", i), model.String(strings.Repeat("x", limit))
		}
		batch = append(batch, smp)
	}
	dead := &deadLetterRecorder{cause: map[string][]model.Sample{}, put: make(chan struct{}, 1)}
	e, err := engine.New(engine.Options{
		Sources: []engine.SourceSpec{{Name: "plc", Source: onceSource{batch}}},
		Sinks:   []engine.SinkSpec{{Name: "uns", Sink: s, Buffer: buffer.NewMemory(1000, buffer.Block), DeadLetters: dead}},
		Backoff: backoff.Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	b.WaitFor(t, waitTimeout, "the 50 good samples", func(m []mqtttest.Message) bool {
		return len(mqtttest.OnPrefix(m, "weir/maxe/plant/a/good")) >= 50
	})
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		if n, all := dead.count(pipeline.CauseOversize); n == 50 && all == 50 {
			break
		} else if n > 50 || all > n {
			t.Fatalf("dead letters: %d oversize of %d; want 50, all oversize", n, all)
		}
		select {
		case <-dead.put:
		case <-deadline.C:
			n, all := dead.count(pipeline.CauseOversize)
			t.Fatalf("dead letters: %d oversize of %d; want 50", n, all)
		}
	}
	dead.mu.Lock()
	defer dead.mu.Unlock()
	for _, smp := range dead.cause[pipeline.CauseOversize] {
		if !strings.HasPrefix(smp.Path, "plant/a/big") {
			t.Fatalf("dead-lettered %s", smp.Path)
		}
	}
	if n := len(mqtttest.OnPrefix(b.Messages(), "weir/maxe/plant/a/big")); n != 0 {
		t.Fatalf("%d oversize messages reached the broker", n)
	}
	if st := s.Status().Counters; st["connects"] != 1 || st["disconnects"] != 0 {
		t.Fatalf("connects %d, disconnects %d; want 1 and 0", st["connects"], st["disconnects"])
	}
}
