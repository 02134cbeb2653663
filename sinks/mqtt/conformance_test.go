package mqtt

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sinks/sinktest"
)

// TestConformance runs the suite every sink runs, against an embedded
// broker that the outage case stops and restarts on the same address.
func TestConformance(t *testing.T) {
	for _, version := range []string{"5", "3.1.1"} {
		for _, mode := range []string{"sample", "batch"} {
			t.Run(version+"/"+mode, func(t *testing.T) {
				var mu sync.Mutex
				current := mqtttest.Start(t, mqtttest.Options{})
				addr := current.Addr()
				var earlier []mqtttest.Message // messages of brokers already stopped
				n := 0
				prefix := ""
				sinktest.Run(t, sinktest.Harness{
					New: func(t *testing.T) pipeline.Sink {
						mu.Lock()
						n++
						prefix = fmt.Sprintf("conf/%d", n)
						mu.Unlock()
						s, err := New(Config{Broker: mqttclient.Broker{URL: "tcp://" + addr, ClientID: fmt.Sprintf("conf-%d", n), ProtocolVersion: version}, TopicPrefix: prefix, Mode: mode}, nil)
						if err != nil {
							t.Fatal(err)
						}
						return s
					},
					Received: func(t *testing.T) []model.Sample {
						mu.Lock()
						b, p := current, prefix
						msgs := append([]mqtttest.Message(nil), earlier...)
						mu.Unlock()
						msgs = append(msgs, b.Messages()...)
						return decodeReceived(t, msgs, p, mode)
					},
					// The sink's own encoding of the batch: topics and payloads.
					MinWireBytes: func(b []model.Sample) uint64 {
						mu.Lock()
						p := prefix
						mu.Unlock()
						enc := newEncoder(p, mode == ModeBatch)
						msgs, _ := enc.encode(b)
						var n uint64
						for i := range msgs {
							n += uint64(len(msgs[i].topic) + len(enc.payload(&msgs[i])))
						}
						return n
					},
					Outage: func(t *testing.T) func() {
						mu.Lock()
						old := current
						mu.Unlock()
						kept := old.Messages()
						old.Stop()
						return func() {
							nb := mqtttest.Start(t, mqtttest.Options{Addr: addr})
							mu.Lock()
							earlier = append(earlier, kept...)
							current = nb
							mu.Unlock()
						}
					},
				})
			})
		}
	}
}

// decodeReceived turns the broker's messages under prefix into samples.
func decodeReceived(t *testing.T, msgs []mqtttest.Message, prefix, mode string) []model.Sample {
	var out []model.Sample
	for _, m := range msgs {
		rest, ok := strings.CutPrefix(m.Topic, prefix+"/")
		if !ok || strings.HasPrefix(rest, "_status") {
			continue
		}
		if mode == "batch" {
			ss, err := payload.DecodeBatch(m.Payload, rest)
			if err != nil {
				t.Fatalf("topic %s: %v", m.Topic, err)
			}
			out = append(out, ss...)
			continue
		}
		s, err := payload.DecodeSample(m.Payload)
		if err != nil {
			t.Fatalf("topic %s: %v", m.Topic, err)
		}
		s.Path = rest
		out = append(out, s)
	}
	return out
}
