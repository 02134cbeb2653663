package mqtt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// TestMosquittoPoisonTopic reproduces issue 11: a tag named "bad\xffname"
// (a Sparkplug metric name) becomes a topic that is not UTF-8, and the
// real Mosquitto drops the connection over it (MQTT 5: DISCONNECT 0x81
// malformed packet; 3.1.1: the socket closes). The topic check is turned
// off, so that the broker, not the sink, meets the poison: the sink must
// isolate the message within one extra Write, reject exactly that sample
// as malformed, deliver the others, and not reconnect in a loop.
func TestMosquittoPoisonTopic(t *testing.T) {
	requireMosquitto(t)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, version := range []string{Version5, Version311} {
		for _, qos := range []int{1} {
			t.Run(fmt.Sprintf("v%s/qos%d", version, qos), func(t *testing.T) {
				prefix := fmt.Sprintf("weir-test/%s/poison/%s/%d", run, version, qos)
				sub := subscribe(t, prefix+"/#")
				s := newSink(t, Config{
					Broker:      mqttclient.Broker{URL: "tcp://" + mosquittoAddr, ClientID: "weir-poison-" + run + version + strconv.Itoa(qos), ProtocolVersion: version},
					TopicPrefix: prefix, QoS: &qos, MaxInflight: 8})
				s.enc.unchecked = true // bypass the check, as source-side escaping is bypassed

				var batch []model.Sample
				for i := range 20 {
					path := fmt.Sprintf("plant/e1/m%d", i)
					if i == 7 {
						path = "plant/e1/bad\xffname"
					}
					batch = append(batch, model.Sample{Path: path, Value: model.Int(int64(i)), SourceTime: 1e15, EdgeTime: 1e15, Seq: uint64(i + 1)})
				}
				ctx := context.Background()
				var rej *pipeline.RejectedError
				writes := 0
				for {
					writes++
					err := s.Write(ctx, batch)
					if errors.As(err, &rej) {
						break
					}
					if err == nil {
						t.Fatal("Write succeeded although the broker cannot take the poison topic")
					}
					if writes >= 2 {
						t.Fatalf("write %d: %v; want the poison isolated within one extra write", writes, err)
					}
					if errors.Is(err, pipeline.ErrDisconnected) {
						if err := s.Connect(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
				if len(rej.Rejected) != 1 || rej.Rejected[0].Index != 7 || rej.Rejected[0].Cause != pipeline.CauseMalformed {
					t.Fatalf("rejected %+v, want index 7 as malformed", rej.Rejected)
				}
				t.Logf("%d writes; rejected: %v", writes, rej)
				sub.waitFor(t, "the 19 good samples", func(m []mqtttest.Message) bool {
					seen := map[string]bool{}
					for _, msg := range mqtttest.OnPrefix(m, prefix+"/plant/e1/") {
						seen[msg.Topic] = true
					}
					return len(seen) >= 19
				})
				// No loop: the initial connection, the engine's reconnect
				// after the first failed write, and at most two of the
				// isolation's own (3.1.1 needs the message to break a
				// second connection).
				if n := s.Status().Counters["connects"]; n > 4 {
					t.Fatalf("%d connects", n)
				}
				// The next batch goes out on the same connection.
				before := s.Status().Counters["connects"]
				if err := s.Write(ctx, batch[:5]); err != nil {
					t.Fatalf("Write after the poison: %v", err)
				}
				if n := s.Status().Counters["connects"]; n != before {
					t.Fatalf("connects %d → %d on a clean batch", before, n)
				}
				if err := s.Close(ctx); err != nil {
					t.Fatal(err)
				}
				sub.clearRetained(t, prefix+"/_status/weir-poison-"+run+version+strconv.Itoa(qos))
			})
		}
	}
}

// onceSource emits one batch, then waits for the end.
type onceSource struct{ batch []model.Sample }

func (o onceSource) Run(ctx context.Context, out pipeline.Emitter) error {
	if err := out.Emit(ctx, o.batch); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// TestMosquittoPoisonThroughEngine is issue 11's reproduction end to end:
// the metric "bad\xffname" of a Sparkplug birth reaches the MQTT sink
// unescaped (the source-side escaping is what this bypasses) and the real
// Mosquitto disconnects over it. The engine moves exactly that sample to
// the sink's durable dead-letter store, the good samples arrive, the sink
// does not reconnect in a loop, and a later sample goes out too.
func TestMosquittoPoisonThroughEngine(t *testing.T) {
	requireMosquitto(t)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	prefix := "weir-test/" + run + "/engine"
	sub := subscribe(t, prefix+"/#")
	s := newSink(t, Config{
		Broker:      mqttclient.Broker{URL: "tcp://" + mosquittoAddr, ClientID: "weir-poison-engine-" + run},
		TopicPrefix: prefix})
	s.enc.unchecked = true
	dead, err := durable.OpenDeadLetters(filepath.Join(t.TempDir(), "uns.dead"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var batch []model.Sample
	for i, name := range []string{"Temperature", "Pressure", "bad\xffname", "Speed", "Level"} {
		batch = append(batch, model.Sample{Path: "spBv1.0/G1/E1/" + name, Value: model.Int(int64(i)), SourceTime: 1e15, EdgeTime: 1e15})
	}
	e, err := engine.New(engine.Options{
		Sources: []engine.SourceSpec{{Name: "sparkplug", Source: onceSource{batch}}},
		Sinks: []engine.SinkSpec{{Name: "uns", Sink: s, Buffer: buffer.NewMemory(100, buffer.Block),
			DeadLetters: dead}},
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
	sub.waitFor(t, "the 4 good samples", func(m []mqtttest.Message) bool {
		return len(mqtttest.OnPrefix(m, prefix+"/spBv1.0/G1/E1/")) >= 4
	})
	deadline := time.Now().Add(waitTimeout)
	for dead.Stats()[pipeline.CauseMalformed].Depth != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("dead letters %+v, want the poison sample under malformed", dead.Stats())
		}
		time.Sleep(10 * time.Millisecond) // polling a store another goroutine fills
	}
	var sink engine.ComponentStatus
	for _, c := range e.Status().Components {
		if c.Kind == "sink" {
			sink = c
		}
	}
	if sink.DeadLetters == nil || sink.DeadLetters.Rejected[pipeline.CauseMalformed] != 1 || sink.DeadLetters.Held[pipeline.CauseMalformed] != 1 {
		t.Fatalf("dead-letter status %+v", sink.DeadLetters)
	}
	if n := sink.Counters["connects"]; n > 3 {
		t.Fatalf("%d connects: a poison sample must not cause a reconnect loop", n)
	}
	if sink.Counters["samples_written"] != 4 || sink.Buffer.Depth != 0 {
		t.Fatalf("counters %v, buffer %+v", sink.Counters, sink.Buffer)
	}
	for _, m := range mqtttest.OnPrefix(sub.waitFor(t, "", func([]mqtttest.Message) bool { return true }), prefix+"/spBv1.0/") {
		if !utf8.ValidString(m.Topic) {
			t.Fatalf("the broker delivered a non-UTF-8 topic %q", m.Topic)
		}
	}
}
