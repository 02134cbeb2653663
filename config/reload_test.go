package config

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/sim"
)

// Hot reload end to end: a running gateway gets a Modbus source added
// (Compare → BuildChange → engine.Apply); its data reaches the MQTT sink,
// whose session is never reopened, and the first source is not restarted.
// Then the sink itself changes and keeps its buffer.
func TestReloadAddsModbusSourceKeepingSessions(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	plant, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: 1}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer plant.Close()
	b, err := broker.Start("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	seen := map[string]bool{}
	err = b.Server().Subscribe("#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		mu.Lock()
		defer mu.Unlock()
		for _, ns := range []string{"linea", "lineb"} {
			if strings.Contains(pk.TopicName, ns) {
				seen[ns] = true
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	saw := func(ns string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return seen[ns] }
	}

	tags, err := yaml.Marshal(sim.PlantTags()[:2])
	if err != nil {
		t.Fatal(err)
	}
	source := func(name, ns string) string {
		var s strings.Builder
		fmt.Fprintf(&s, "  - name: %s\n    modbus:\n      devices:\n        - name: plc\n          address: %q\n"+
			"          timeout: 1s\n          namespace: %s\n          groups:\n            - interval: 50ms\n              tags:\n",
			name, plant.Addr(), ns)
		for _, line := range strings.Split(strings.TrimRight(string(tags), "\n"), "\n") {
			s.WriteString("                " + line + "\n")
		}
		return s.String()
	}
	dataDir := t.TempDir()
	text := func(sources string, qos int) string {
		return fmt.Sprintf("node: {id: reload}\ndata_dir: %q\nsources:\n%ssinks:\n  - name: uns\n"+
			"    buffer: {type: memory, capacity: 10000}\n    mqtt: {url: tcp://%s, client_id: reload, qos: %d}\n",
			dataDir, sources, b.Addr(), qos)
	}
	parse := func(s string) *Config {
		cfg, err := Parse("reload.yaml", []byte(s), noEnv)
		if err != nil {
			t.Fatalf("Parse: %v\n%s", err, s)
		}
		return cfg
	}
	running := parse(text(source("line-a", "linea"), 1))
	opts, err := running.Build(log)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	eventually(t, "data from the first source", saw("linea"))

	apply := func(next *Config, want string) {
		t.Helper()
		d := Compare(running, next)
		if d.String() != want {
			t.Fatalf("diff %q, want %q", d, want)
		}
		ch, err := next.BuildChange(d, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Apply(ctx, ch); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		running = next
	}
	apply(parse(text(source("line-a", "linea")+source("line-b", "lineb"), 1)), "sources: +line-b")
	eventually(t, "data from the added source", saw("lineb"))
	st := e.Status()
	if c := componentOf(t, st, "sink", "uns").Counters["connects"]; c != 1 {
		t.Errorf("unchanged MQTT sink connected %d times, want 1", c)
	}
	if r := componentOf(t, st, "source", "line-a").Counters["restarts"]; r != 0 {
		t.Errorf("unchanged source restarted %d times", r)
	}

	// The sink changes (QoS): it restarts alone, with its buffer.
	apply(parse(text(source("line-a", "linea")+source("line-b", "lineb"), 0)), "sinks: ~uns")
	before := componentOf(t, e.Status(), "sink", "uns").Counters["samples_written"]
	eventually(t, "the changed sink to deliver", func() bool {
		st := e.Status()
		return componentOf(t, st, "sink", "uns").Counters["samples_written"] > before
	})
	names := func(kind string) []string {
		var out []string
		for _, c := range e.Status().Components {
			if c.Kind == kind {
				out = append(out, c.Name)
			}
		}
		return out
	}
	if got := names("source"); !slices.Equal(got, []string{"line-a", "line-b"}) {
		t.Errorf("sources %v", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return")
	}
}

func componentOf(t *testing.T, st engine.Status, kind, name string) engine.ComponentStatus {
	t.Helper()
	for _, c := range st.Components {
		if c.Kind == kind && c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s %q in status", kind, name)
	return engine.ComponentStatus{}
}

// eventually polls cond until it holds; a hang fails after 2 minutes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling, not synchronisation
	}
}
