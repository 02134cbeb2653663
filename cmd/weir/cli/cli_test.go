package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sim"
)

// TestMain doubles as the weir binary for tests that need a real process
// to kill: with WEIR_CLI_CHILD set it runs Main on the arguments in
// WEIR_CLI_ARGS (one per line) instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("WEIR_CLI_CHILD") == "1" {
		os.Exit(Main(strings.Split(os.Getenv("WEIR_CLI_ARGS"), "\n"), os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func TestValidateCommand(t *testing.T) {
	examples, _ := filepath.Glob("../../../examples/*.yaml")
	if len(examples) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range examples {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if code, out, errOut := run("validate", "-offline", f); code != 0 || !strings.Contains(out, ": ok") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
		})
	}
	t.Run("bad file exits 1 with file:line", func(t *testing.T) {
		code, _, errOut := run("validate", "-c", "../../../config/testdata/unknown-key.bad.yaml")
		if code != 1 || !strings.Contains(errOut, "unknown-key.bad.yaml:13: sources[0].modbus.devices[0].groups[0].tags[0].colour: unknown key \"colour\"") {
			t.Fatalf("exit %d, stderr: %s", code, errOut)
		}
	})
	t.Run("missing -c is a usage error", func(t *testing.T) {
		if code, _, _ := run("validate"); code != 2 {
			t.Fatalf("exit %d, want 2", code)
		}
	})
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errOut := run("frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	if code, out, _ := run("version"); code != 0 || !strings.HasPrefix(out, "weir ") {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
}

// The demo's generated configuration must pass the same loader as a user's.
func TestDemoConfigValidates(t *testing.T) {
	code, out, errOut := run("run", "--print-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	cfg, err := config.Parse("demo.yaml", []byte(out), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(cfg.Sources[0].Modbus.Devices[0].Groups[0].Tags), len(sim.PlantTags()); got != want {
		t.Fatalf("demo config has %d tags, the plant %d", got, want)
	}
}

func TestSimExampleDecodesStrictly(t *testing.T) {
	data, err := os.ReadFile("../../../examples/sim/plant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c sim.Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// End to end against this machine's Mosquitto: the simulated plant →
// Modbus source → engine → MQTT sink → Mosquitto → a subscriber. Every tag
// of the register map must arrive on <prefix>/<namespace>/<tag> with the
// documented payload.
func TestEndToEndMosquitto(t *testing.T) {
	const mosquitto = "127.0.0.1:1883"
	if c, err := net.DialTimeout("tcp", mosquitto, time.Second); err != nil {
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatalf("Mosquitto is not answering on %s: %v", mosquitto, err)
		}
		t.Skipf("Mosquitto is not answering on %s: %v", mosquitto, err)
	} else {
		c.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: 7, NoFaults: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	prefix := fmt.Sprintf("weir-e2e/%d/%d", os.Getpid(), time.Now().UnixNano())
	text, err := demoConfig(s.Addr(), mosquitto, "", prefix, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, "retain: true", "retain: false", 1)
	cfg, err := config.Parse("e2e.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}

	// Subscribe first (a third-party client library, paho v3).
	tags := sim.PlantTags()
	want := make(map[string]sim.TagSpec, len(tags))
	for _, tg := range tags {
		want[prefix+"/"+demoNamespace+"/"+tg.Name] = tg
	}
	var mu sync.Mutex
	got := map[string]model.Sample{}
	complete := make(chan struct{})
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mosquitto).SetClientID("weir-e2e-sub-" + fmt.Sprint(os.Getpid())))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe(prefix+"/#", 1, func(_ paho.Client, m paho.Message) {
		if _, ok := want[m.Topic()]; !ok {
			return
		}
		smp, err := payload.DecodeSample(m.Payload())
		if err != nil {
			t.Errorf("topic %s: payload %q does not decode: %v", m.Topic(), m.Payload(), err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := got[m.Topic()]; !seen {
			got[m.Topic()] = smp
			if len(got) == len(want) {
				close(complete)
			}
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	gwCtx, stopGW := context.WithCancel(ctx)
	gwDone := make(chan error, 1)
	go func() { gwDone <- runGateway(gwCtx, cfg, nil, testLogger(t)) }()
	select {
	case <-complete:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		t.Fatalf("only %d of %d tags arrived", len(got), len(want))
	}
	stopGW()
	if err := <-gwDone; err != nil {
		t.Fatalf("gateway: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	for topic, tg := range want {
		smp := got[topic]
		if !smp.Quality.IsGood() {
			t.Errorf("%s: quality %v", topic, smp.Quality)
		}
		if smp.SourceTime == 0 || smp.EdgeTime == 0 || smp.Seq == 0 {
			t.Errorf("%s: missing ts/edge_ts/seq: %+v", topic, smp)
		}
		wantKind := map[string]model.Kind{
			sim.TypeBool: model.KindBool, sim.TypeString: model.KindString,
			sim.TypeFloat32: model.KindFloat, sim.TypeFloat64: model.KindFloat,
		}[tg.Type]
		if tg.Scale != nil || tg.Offset != nil {
			wantKind = model.KindFloat
		}
		switch k := smp.Value.Kind(); {
		case wantKind == 0 && k != model.KindInt && k != model.KindUint:
			t.Errorf("%s: value %v is %v, want an integer", topic, smp.Value, k)
		case wantKind != 0 && k != wantKind && !(wantKind == model.KindFloat && (k == model.KindInt || k == model.KindUint)):
			t.Errorf("%s: value %v is %v, want %v", topic, smp.Value, k, wantKind)
		}
	}
	if v := got[prefix+"/"+demoNamespace+"/speed_setpoint"].Value; v.AsInt() < 60 || v.AsInt() > 600 {
		t.Errorf("speed_setpoint = %v, want 60..600", v)
	}
}
