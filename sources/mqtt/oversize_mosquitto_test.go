package mqtt

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/pipeline"
)

// TestMosquittoOversize sends a 64 MB message through the machine's
// Mosquitto to a source with max_payload 1 KiB. Mosquitto honours the
// Maximum Packet Size an MQTT 5 CONNECT announces and drops the message
// for that client; to an MQTT 3.1.1 client it sends the whole packet, which
// the client reads away unseen, acknowledges and counts. Either way the
// connection stays up and the next message arrives.
func TestMosquittoOversize(t *testing.T) {
	requireMosquitto(t)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	pub := mosquittoPublisher(t, "weir-oversize-pub-"+run)
	for _, v := range []string{Version5, Version311} {
		t.Run("v"+v, func(t *testing.T) {
			topic := "weir-src-test/" + run + "/oversize/" + map[string]string{Version5: "v5", Version311: "v311"}[v]
			out := newCollector()
			clean := true
			s := runSource(t, Config{
				Broker:     mqttclient.Broker{URL: "tcp://" + mosquittoAddr, ClientID: "weir-oversize-" + run + "-" + v, ProtocolVersion: v},
				CleanStart: &clean, MaxPayload: 1024,
				Subscriptions: []SubscriptionConfig{{Topic: topic, Format: FormatRaw}}}, out)
			waitRunning(t, s) // subscribed
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if _, err := pub.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: bytes.Repeat([]byte("9"), 64<<20)}); err != nil {
				t.Fatalf("publish 64 MB: %v", err)
			}
			if _, err := pub.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte("1")}); err != nil {
				t.Fatalf("publish: %v", err)
			}
			got := out.waitN(t, 1)
			st := s.Status().Counters
			if got[0].Value.AsInt() != 1 || st["connects"] != 1 {
				t.Fatalf("got %s, status %+v", dumpSamples(got), st)
			}
			want := uint64(0)
			if v == Version311 {
				want = 1
			}
			if st["oversize"] != want {
				t.Errorf("oversize %d, want %d", st["oversize"], want)
			}
			t.Logf("MQTT %s: oversize %d, decode errors %d, connects %d", v, st["oversize"], st["decode_errors"], st["connects"])
		})
	}
}

// waitRunning waits until the source has subscribed (state running),
// polling like waitCounter: the source has no change notification.
func waitRunning(t *testing.T, s *Source) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for s.Status().State != pipeline.StateRunning {
		if time.Now().After(deadline) {
			t.Fatalf("source state %s, want running", s.Status().State)
		}
		<-tick.C
	}
}
