package mqtt

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
	spsink "github.com/weir-edge/weir/sinks/sparkplug"
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

// mosquittoPublisher is an independent paho MQTT 5 client.
func mosquittoPublisher(t *testing.T, id string) *paho.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", mosquittoAddr)
	if err != nil {
		t.Fatal(err)
	}
	// paho's own 10 s packet timeout would be a speed limit: a 64 MB
	// publish on a busy 2-core machine can take longer. The callers'
	// contexts bound a hang instead.
	cli := paho.NewClient(paho.ClientConfig{Conn: packets.NewThreadSafeConn(nc), PacketTimeout: 2 * time.Minute})
	if _, err := cli.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatalf("publisher connect: %v", err)
	}
	t.Cleanup(func() {
		_ = cli.Disconnect(&paho.Disconnect{})
		<-cli.Done()
	})
	return cli
}

// TestMosquittoEndToEnd subscribes through the machine's Mosquitto with
// both protocol versions (persistent sessions, as by default), and ingests
// a Weir Sparkplug sink's output as a host application. Topics, client ids
// and the Sparkplug group are unique per run.
func TestMosquittoEndToEnd(t *testing.T) {
	requireMosquitto(t)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, v := range []string{Version5, Version311} {
		t.Run("v"+v, func(t *testing.T) {
			prefix := "weir-src-test/" + run + "/" + map[string]string{Version5: "v5", Version311: "v311"}[v]
			out := newCollector()
			dials := make(chan error, 1)
			// MQTT 5 exercises the persistent session (expiring a minute
			// after the test); 3.1.1 sessions never expire on Mosquitto, so
			// that one connects clean to leave nothing behind.
			clean := v == Version311
			runSource(t, Config{
				Broker:     mqttclient.Broker{URL: "tcp://" + mosquittoAddr, ClientID: "weir-src-" + run + "-" + v, ProtocolVersion: v},
				CleanStart: &clean, SessionExpiry: time.Minute, Subscriptions: []SubscriptionConfig{
					{Topic: prefix + "/json/+", Path: "m/{4}", JSON: JSONConfig{Value: "$.v", Timestamp: "$.ts"}},
					{Topic: prefix + "/raw/#", StripPrefix: prefix + "/", Format: FormatRaw},
				}}, out, withClock, dialCounter(dials))
			if err := <-dials; err != nil {
				t.Fatalf("dial: %v", err)
			}
			pub := mosquittoPublisher(t, "weir-src-pub-"+run+"-"+v)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			// The source subscribes right after connecting; Mosquitto does
			// not tell when, so probe until the first message shows up.
			first := retryUntil(t, out, func() {
				if _, err := pub.Publish(ctx, &paho.Publish{Topic: prefix + "/raw/probe", QoS: 1, Payload: []byte("0")}); err != nil {
					t.Fatalf("publish: %v", err)
				}
			})
			n := len(first)
			for topic, payload := range map[string]string{
				prefix + "/json/temp": `{"v":21.5,"ts":1732568400123}`,
				prefix + "/raw/state": `RUNNING`,
			} {
				if _, err := pub.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)}); err != nil {
					t.Fatalf("publish: %v", err)
				}
			}
			got := byPath(out.waitN(t, n+2))
			if s := got["m/temp"]; !s.Value.Equal(model.Float(21.5)) || s.SourceTime != tsRef {
				t.Errorf("json: %+v", s)
			}
			if s := got["raw/state"]; !s.Value.Equal(model.String("RUNNING")) {
				t.Errorf("raw: %+v", s)
			}
		})
	}

	t.Run("sparkplug", func(t *testing.T) {
		group := "weirtest-" + run
		out := newCollector()
		dials := make(chan error, 1)
		stop := runSourceStoppable(t, Config{Broker: mqttclient.Broker{URL: "tcp://" + mosquittoAddr, ClientID: "weir-host-" + run}, Sparkplug: &SparkplugConfig{
			GroupIDs: []string{group}, HostID: "weir-host-" + run, PublishState: true}}, out, dialCounter(dials))
		if err := <-dials; err != nil {
			t.Fatalf("dial: %v", err)
		}
		sink, err := spsink.New(spsink.Config{Broker: mqttclient.Broker{URL: "tcp://" + mosquittoAddr}, GroupID: group, EdgeNodeID: "gw",
			BdSeqFile: filepath.Join(t.TempDir(), "bdseq"), DataQoS: 1, PrimaryHostID: "weir-host-" + run}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		defer func() { _ = sink.Close(context.Background()) }()
		if err := sink.Connect(ctx); err != nil {
			t.Fatalf("sink Connect: %v", err)
		}
		ts := time.Date(2026, 3, 4, 5, 6, 7, 123_000_000, time.UTC).UnixNano()
		batch := []model.Sample{{Path: "line1/temp", Value: model.Float(21.5), SourceTime: ts}}
		// Writes wait for the host's STATE (primary host gating): retry
		// until our STATE has reached the sink.
		retryUntil(t, out, func() { _ = sink.Write(ctx, batch) })
		// The DBIRTH may come first, from a Write the gate refused, with
		// a null value; the DDATA follows.
		path := "spBv1.0/" + group + "/gw/line1/temp"
		got := byPath(out.waitFor(t, "the value", func(ss []model.Sample) bool { return byPath(ss)[path].Value.IsValid() }))
		if s := got[path]; !s.Value.Equal(model.Float(21.5)) || s.SourceTime != ts || !s.Quality.IsGood() {
			t.Fatalf("got %s", dumpSamples(out.snapshot()))
		}
		// Leave no retained STATE behind on the shared broker.
		_ = sink.Close(ctx)
		stop()
		pub := mosquittoPublisher(t, "weir-src-clean-"+run)
		_, _ = pub.Publish(ctx, &paho.Publish{Topic: "spBv1.0/STATE/weir-host-" + run, QoS: 1, Retain: true})
	})
}

// retryUntil repeats action every 50 ms until out has a sample, for peers
// that cannot tell when they are ready, and returns the samples.
func retryUntil(t *testing.T, out *collector, action func()) []model.Sample {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		action()
		select {
		case <-out.notify:
			return out.snapshot()
		case <-tick.C:
		case <-deadline.C:
			t.Fatal("timed out waiting for the first sample")
		}
	}
}
