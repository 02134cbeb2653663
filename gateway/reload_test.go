package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/sim"
	simopcua "github.com/weir-edge/weir/sim/opcua"
)

// hangBound is the least a wait allows before it fails: on a loaded CI
// machine things take many times longer than here, and a wait bounds a
// hang, never a speed.
const hangBound = 2 * time.Minute

const mosquitto = "127.0.0.1:1883"

// needMosquitto skips (or, with WEIR_REQUIRE_PEERS=1, fails) without the
// broker of this machine.
func needMosquitto(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", mosquitto, time.Second)
	if err != nil {
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatalf("Mosquitto is not answering on %s: %v", mosquitto, err)
		}
		t.Skipf("Mosquitto is not answering on %s: %v", mosquitto, err)
	}
	c.Close()
}

// waitFor polls cond until it holds, failing after hangBound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling, not synchronisation
	}
}

// modbusSource is a source block polling two tags of the simulated plant
// at addr.
func modbusSource(t *testing.T, name, addr, namespace string) string {
	t.Helper()
	tags, err := yaml.Marshal(sim.PlantTags()[:2])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    modbus:\n      devices:\n        - name: %s-dev\n          address: %q\n          unit_id: 1\n          timeout: 2s\n          namespace: %s\n          groups:\n            - interval: 200ms\n              tags:\n",
		name, name, addr, namespace)
	for _, line := range strings.Split(strings.TrimRight(string(tags), "\n"), "\n") {
		b.WriteString("                " + line + "\n")
	}
	return b.String()
}

// startPlant starts one simulated Modbus PLC for the test.
func startPlant(t *testing.T, seed int64) string {
	t.Helper()
	s, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: seed, NoFaults: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addr()
}

// runGateway starts g and returns the function that stops it and waits.
func runGateway(t *testing.T, g *Gateway) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gateway: %v", err)
				}
			case <-time.After(hangBound):
				t.Error("gateway did not stop")
			}
		})
	}
	t.Cleanup(stop)
	waitFor(t, "the gateway to run", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.running
	})
	return stop
}

// counter sums counter name of the source called source.
func counter(eng *engine.Engine, kind, name, key string) uint64 {
	for _, c := range eng.Status().Components {
		if c.Kind == kind && c.Name == name {
			return c.Counters[key]
		}
	}
	return 0
}

func sinkStatus(eng *engine.Engine, name string) (engine.ComponentStatus, bool) {
	for _, c := range eng.Status().Components {
		if c.Kind == "sink" && c.Name == name {
			return c, true
		}
	}
	return engine.ComponentStatus{}, false
}

// The test: a gateway with a Modbus PLC, an OPC UA server and an
// MQTT subscription feeding an MQTT sink applies a configuration that adds
// a second Modbus device. The new device's tags flow; the OPC UA session
// and the MQTT connection are the ones from the start (their counters do
// not move); a counter published to the MQTT source before, during and
// after the apply arrives at the sink complete and in order; the sink
// drops nothing; the apply is audited with the hash and the change.
func TestReloadAddsADeviceKeepingSessions(t *testing.T) {
	needMosquitto(t)
	dir := t.TempDir()
	plc1, plc2 := startPlant(t, 7), startPlant(t, 8)
	ua, err := simopcua.Serve(t.Context(), "127.0.0.1:0", sim.NewPlant(sim.PlantOptions{Seed: 7}), simopcua.Options{Refresh: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	unique := fmt.Sprintf("weir-reload/%d/%d", os.Getpid(), time.Now().UnixNano())
	base := fmt.Sprintf(`node: {id: reload-test}
data_dir: %q
sources:
%s  - name: opc
    opcua:
      endpoint: %q
      security_policy: None
      pki_dir: %q
      namespace: plant/opc
      subscriptions:
        - publishing_interval: 100ms
          items:
            - {name: counter, node_id: "ns=1;s=types.counter"}
  - name: mq
    mqtt:
      url: tcp://%s
      client_id: reload-src-%d
      subscriptions:
        - topic: %s/in/counter
          qos: 1
          path: plant/mq/counter
          format: json
          json: {value: $.v}
sinks:
  - name: out
    buffer: {type: memory, capacity: 100000}
    mqtt: {url: "tcp://%s", client_id: reload-sink-%d, topic_prefix: %s/out, qos: 1, retain: false}
`, dir, modbusSource(t, "plc1", plc1, "plant/plc1"), ua.Endpoint(), filepath.Join(dir, "pki"), mosquitto, os.Getpid(), unique, mosquitto, os.Getpid(), unique)
	added := strings.Replace(base, "  - name: opc\n", modbusSource(t, "plc2", plc2, "plant/plc2")+"  - name: opc\n", 1)

	// What arrives at the sink's broker: the MQTT counter in order, and
	// whether plc2's tags came.
	var mu sync.Mutex
	var counts []int64
	plc2Seen, outCount := false, 0
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mosquitto).SetClientID(fmt.Sprintf("reload-sub-%d", os.Getpid())))
	if tok := sub.Connect(); !tok.WaitTimeout(hangBound) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe(unique+"/out/#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		outCount++
		switch {
		case strings.HasSuffix(m.Topic(), "/plant/mq/counter"):
			s, err := payload.DecodeSample(m.Payload())
			if err != nil {
				t.Errorf("payload %q: %v", m.Payload(), err)
				return
			}
			counts = append(counts, s.Value.AsInt())
		case strings.Contains(m.Topic(), "/plant/plc2/"):
			plc2Seen = true
		}
	}); !tok.WaitTimeout(hangBound) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	file := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(file, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(file, []byte(base), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	events := &eventList{}
	g, err := New(cfg, Options{Logger: testLogger(t), ConfigPath: file, ConfigData: []byte(base)})
	if err != nil {
		t.Fatal(err)
	}
	g.events = security.Fanout{g.events, events}
	stop := runGateway(t, g)
	eng := g.Engine()
	waitFor(t, "the OPC UA session, the MQTT connection and plc1's data", func() bool {
		return counter(eng, "source", "opc", "sessions") == 1 && counter(eng, "source", "mq", "connects") == 1 &&
			counter(eng, "source", "plc1", "samples") > 0
	})

	pub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mosquitto).SetClientID(fmt.Sprintf("reload-pub-%d", os.Getpid())))
	if tok := pub.Connect(); !tok.WaitTimeout(hangBound) || tok.Error() != nil {
		t.Fatalf("publisher: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	const total = 300
	published := make(chan struct{})
	go func() { // before, during and after the apply
		defer close(published)
		for i := 1; i <= total; i++ {
			b, _ := json.Marshal(map[string]int{"v": i})
			if tok := pub.Publish(unique+"/in/counter", 1, false, b); !tok.WaitTimeout(hangBound) || tok.Error() != nil {
				t.Errorf("publish %d: %v", i, tok.Error())
				return
			}
		}
	}()
	waitFor(t, "the first counter values at the sink", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(counts) > 0
	})

	t0 := time.Now()
	res, err := g.ApplyYAML(t.Context(), []byte(added), ApplyInfo{Actor: "test"})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Logf("apply (validate, diff, build plc2, engine.Apply) took %s", time.Since(t0)) // a figure, not asserted
	if !res.Applied || strings.Join(res.Diff.Sources.Added, ",") != "plc2" || len(res.Diff.Sources.Changed)+len(res.Diff.Sources.Removed)+
		len(res.Diff.Sinks.Added)+len(res.Diff.Sinks.Changed)+len(res.Diff.Sinks.Removed) != 0 || res.Diff.Processors {
		t.Fatalf("apply result %+v", res)
	}
	if !strings.Contains(res.Text, "+  - name: plc2\n") {
		t.Errorf("diff text lacks the new source:\n%s", res.Text)
	}
	waitFor(t, "plc2's tags at the sink", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return plc2Seen
	})
	<-published
	waitFor(t, "every counter value at the sink", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(counts) >= total
	})
	if n := counter(eng, "source", "opc", "sessions"); n != 1 {
		t.Errorf("OPC UA sessions = %d, want the one from the start", n)
	}
	if n := counter(eng, "source", "mq", "connects"); n != 1 {
		t.Errorf("MQTT source connects = %d, want the one from the start", n)
	}
	mu.Lock()
	for i, v := range counts[:total] {
		if v != int64(i+1) {
			t.Fatalf("counter at the sink: value %d is %d, want %d (lost or reordered across the reload): %v", i, v, i+1, counts)
		}
	}
	mu.Unlock()
	stop()
	st, ok := sinkStatus(eng, "out")
	if !ok || st.Buffer == nil || st.Buffer.Dropped != 0 || st.Buffer.Pushed != st.Buffer.Acked {
		t.Fatalf("sink out: %+v %+v", st, st.Buffer)
	}
	if n := events.Count(security.ConfigApplied); n != 2 {
		t.Errorf("config.applied events = %d, want the start and the reload", n)
	}
	ev := events.Last(security.ConfigApplied)
	if ev.Actor != "test" || ev.Outcome != "ok" || !strings.Contains(ev.Detail, "sha256 "+res.SHA256) || !strings.Contains(ev.Detail, "sources: +plc2") {
		t.Errorf("reload event %+v", ev)
	}
	if rc := (configManager{g}).Running(); rc.SHA256 != res.SHA256 || rc.YAML != added {
		t.Errorf("running config after the apply: %s", rc.SHA256)
	}
}
