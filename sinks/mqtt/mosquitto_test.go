package mqtt

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
)

// mosquittoAddr is the real broker this machine runs for end-to-end tests.
const mosquittoAddr = "127.0.0.1:1883"

// requireMosquitto skips the test when the broker does not answer, unless
// WEIR_REQUIRE_PEERS=1 says it must be there.
func requireMosquitto(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", mosquittoAddr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
		t.Fatalf("Mosquitto at %s does not answer and WEIR_REQUIRE_PEERS=1: %v", mosquittoAddr, err)
	}
	t.Skipf("Mosquitto at %s does not answer (%v); set WEIR_REQUIRE_PEERS=1 to fail instead", mosquittoAddr, err)
}

// subscriber is an independent paho MQTT 5 client recording messages.
type subscriber struct {
	cli    *paho.Client
	mu     sync.Mutex
	msgs   []mqtttest.Message
	notify chan struct{}
}

func subscribe(t *testing.T, filter string) *subscriber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", mosquittoAddr)
	if err != nil {
		t.Fatal(err)
	}
	sub := &subscriber{notify: make(chan struct{}, 1)}
	sub.cli = paho.NewClient(paho.ClientConfig{
		Conn: packets.NewThreadSafeConn(nc),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			sub.mu.Lock()
			sub.msgs = append(sub.msgs, mqtttest.Message{Topic: pr.Packet.Topic, Payload: pr.Packet.Payload,
				QoS: pr.Packet.QoS, Retain: pr.Packet.Retain})
			sub.mu.Unlock()
			select {
			case sub.notify <- struct{}{}:
			default:
			}
			return true, nil
		}},
	})
	id := "weir-e2e-sub-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := sub.cli.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatalf("subscriber connect: %v", err)
	}
	t.Cleanup(func() { _ = sub.cli.Disconnect(&paho.Disconnect{}) })
	if _, err := sub.cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
	return sub
}

func (s *subscriber) waitFor(t *testing.T, what string, cond func([]mqtttest.Message) bool) []mqtttest.Message {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs := append([]mqtttest.Message(nil), s.msgs...)
		s.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; got:\n%s", what, mqtttest.Dump(msgs))
		}
	}
}

// TestMosquittoEndToEnd publishes through the sink to the machine's real
// Mosquitto and checks topics and payloads as an independent subscriber
// sees them, for both protocol versions and both modes.
func TestMosquittoEndToEnd(t *testing.T) {
	requireMosquitto(t)
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // unique per run: no stale retained messages
	for _, version := range []string{Version5, Version311} {
		for _, mode := range []string{ModeSample, ModeBatch} {
			t.Run(fmt.Sprintf("v%s/%s", version, mode), func(t *testing.T) {
				prefix := fmt.Sprintf("weir-test/%s/%s/%s", run, map[string]string{Version5: "v5", Version311: "v311"}[version], mode)
				sub := subscribe(t, prefix+"/#")
				id := "weir-e2e-" + run + "-" + mode + "-" + version
				s := newSink(t, Config{
					Broker:      mqttclient.Broker{URL: "tcp://" + mosquittoAddr, ClientID: id, ProtocolVersion: version},
					TopicPrefix: prefix, Mode: mode})
				batch := testBatch()
				if err := s.Write(context.Background(), batch); err != nil {
					t.Fatalf("Write: %v", err)
				}
				want := map[string]int{ModeSample: 4, ModeBatch: 2}[mode]
				msgs := sub.waitFor(t, "data", func(m []mqtttest.Message) bool { return len(mqtttest.OnPrefix(m, prefix+"/site/")) >= want })
				checkDelivered(t, msgs, prefix, mode, batch)
				if mode == ModeBatch {
					line1 := mqtttest.On(msgs, prefix+"/site/line1")
					if len(line1) != 1 {
						t.Fatalf("site/line1: %d messages", len(line1))
					}
					// The exact documented bytes, tags in batch order.
					const wantLine1 = `{"samples":[` +
						`{"tag":"temperature","value":21.5,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":42},` +
						`{"tag":"running","value":true,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":44},` +
						`{"tag":"alarm","value":null,"quality":"bad","reason":"device unreachable","ts":1732567000123,"edge_ts":1732567000125,"seq":45,"historical":true}]}`
					if string(line1[0].Payload) != wantLine1 {
						t.Errorf("payload\n got %s\nwant %s", line1[0].Payload, wantLine1)
					}
				} else {
					temp := mqtttest.On(msgs, prefix+"/site/line1/temperature")
					const wantTemp = `{"value":21.5,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":42}`
					if len(temp) != 1 || string(temp[0].Payload) != wantTemp {
						t.Errorf("temperature: %+v, want payload %s", temp, wantTemp)
					}
				}
				status := prefix + "/_status/" + id
				sub.waitFor(t, "online status", func(m []mqtttest.Message) bool {
					got := mqtttest.On(m, status)
					return len(got) >= 1 && string(got[0].Payload) == "online"
				})
				if err := s.Close(context.Background()); err != nil {
					t.Fatalf("Close: %v", err)
				}
				sub.waitFor(t, "offline status", func(m []mqtttest.Message) bool {
					got := mqtttest.On(m, status)
					return len(got) >= 2 && string(got[len(got)-1].Payload) == "offline"
				})
				sub.clearRetained(t, status)
			})
		}
	}
}

// clearRetained removes a retained message the test left on the shared
// broker (an empty retained payload deletes it).
func (s *subscriber) clearRetained(t *testing.T, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := s.cli.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: true}); err != nil {
		t.Errorf("clear retained %s: %v", topic, err)
	}
}
