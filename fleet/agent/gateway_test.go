package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/gateway"
	"github.com/weir-edge/weir/sim"
)

// siteConfig is a small real pipeline: the simulated plant's first two
// tags over Modbus to NATS JetStream on the test hub's server; extraSink
// adds a second NATS sink at url (a closed port makes it never connect).
//
// password is the sinks' password value: {file: …} in the site's own file,
// ${secret:nats_pw} in the hub's bundles (resolved by SiteSecrets).
func siteConfig(t *testing.T, dataDir, plant, hubURL, extraSink, password string) string {
	t.Helper()
	tags, err := yaml.Marshal(sim.PlantTags()[:2])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\nsources:\n  - name: plc\n    modbus:\n      devices:\n        - name: filler\n          address: %q\n          unit_id: 1\n          timeout: 2s\n          namespace: acme/plant1\n          groups:\n            - interval: 200ms\n              tags:\n", dataDir, plant)
	for _, line := range strings.Split(strings.TrimRight(string(tags), "\n"), "\n") {
		b.WriteString("                " + line + "\n")
	}
	sink := "  - name: %s\n    nats:\n      url: %q\n      client_id: %s\n      subject_prefix: %s\n      stream: %s\n      create_stream: true\n      username: hub\n      password: %s\n      connect_timeout: 1s\n"
	b.WriteString("sinks:\n")
	fmt.Fprintf(&b, sink, "uns", hubURL, "weir-s1", "plant", "PLANT", password)
	if extraSink != "" {
		fmt.Fprintf(&b, sink, "extra", extraSink, "weir-s1-extra", "extra", "EXTRA", password)
	}
	return b.String()
}

// The real apply path: a version from the hub is verified, applied to a
// running gateway by hot reload (the new sink runs, config.applied names
// the fleet), becomes known-good after its dwell; a version whose new sink
// never connects is rolled back on the gateway itself, with the reason; a
// local reload of the site's own file (break-glass) is reported as drift.
func TestRealGatewayApplyAndRollback(t *testing.T) {
	h := startHub(t)
	plant, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: 1, NoFaults: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer plant.Close()
	dataDir := t.TempDir()
	secretDir := t.TempDir()
	pwFile := filepath.Join(secretDir, "pw")
	if err := os.WriteFile(pwFile, []byte("hub"), 0o600); err != nil {
		t.Fatal(err)
	}
	secretsFile := filepath.Join(secretDir, "secrets.yaml")
	if err := os.WriteFile(secretsFile, []byte("nats_pw: hub\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	local := siteConfig(t, dataDir, plant.Addr(), h.url(), "", "{file: "+pwFile+"}")
	path := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(path, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, ps := config.Inspect(path, []byte(local), config.Options{})
	if cfg == nil {
		t.Fatalf("local configuration: %v", ps)
	}
	g, err := gateway.New(cfg, gateway.Options{ConfigPath: path, ConfigData: []byte(local)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gwDone := make(chan error, 1)
	go func() { gwDone <- g.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-gwDone:
			if err != nil {
				t.Errorf("gateway: %v", err)
			}
		case <-time.After(hangBound):
			t.Error("gateway did not stop")
		}
	}()

	trust, _ := bundle.NewTrustStore(h.signer.Public())
	store, err := bundle.OpenStore(t.TempDir(), "s1", trust, bundle.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Site: "s1", URL: h.url(), NATS: []nats.Option{nats.UserInfo("s1", "s1")}, Store: store, Target: Gateway(g),
		Secrets:        &bundle.SiteSecrets{File: secretsFile, Dir: filepath.Join(secretDir, "resolved")},
		ReportInterval: time.Second, Dwell: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(actx) }()
	defer func() {
		acancel()
		<-agentDone
	}()

	good := siteConfig(t, dataDir, plant.Addr(), h.url(), h.url(), "${secret:nats_pw}")
	h.setDesired(h.issue("s1", 1, good), true)
	r := h.waitReport("s1", "version 1 in sync", func(r Report) bool { return r.Applied.Version == 1 && r.State == StateInSync })
	// The text that runs is version 1's with its secret reference
	// resolved to a file: its hash is the effective one.
	running := string(g.RunningText())
	v1 := g.FleetState().ConfigSHA256
	if r.Effective.Version != 1 || r.Effective.Hash != v1 || r.Drift || !strings.Contains(running, "name: extra") || strings.Contains(running, "${secret:") {
		t.Fatalf("after version 1: effective %+v drift %v, the gateway runs %s:\n%s", r.Effective, r.Drift, v1, running)
	}
	if len(r.Health.Sinks) != 2 || !r.Health.Sinks[0].Up || !r.Health.Sinks[1].Up {
		t.Fatalf("after version 1: sinks %+v, want extra and uns up", r.Health.Sinks)
	}

	if !auditHas(t, dataDir, `"fleet:v1"`) {
		t.Fatal("the audit trail has no config.applied by fleet:v1")
	}

	bad := siteConfig(t, dataDir, plant.Addr(), h.url(), "nats://127.0.0.1:1", "${secret:nats_pw}")
	h.setDesired(h.issue("s1", 2, bad), true)
	r = h.waitReport("s1", "rollback of version 2", func(r Report) bool { return r.Rollback != nil })
	if r.Rollback.Version != 2 || !strings.Contains(r.Rollback.Reason, `sink "extra" is not connected`) {
		t.Fatalf("rollback = %+v, want version 2 and the extra sink named", r.Rollback)
	}
	if got := g.FleetState().ConfigSHA256; got != v1 {
		t.Fatalf("after the rollback the gateway runs %s, want version 1's text again", got)
	}
	if store.Current().Version != 1 {
		t.Fatalf("known-good = version %d, want 1", store.Current().Version)
	}

	// Break-glass: the operator reloads the site's own file (weir reload,
	// SIGHUP): the running text is no longer version 1's → drift, with
	// the effective hash of what runs.
	if _, err := g.Reload(ctx, "cli"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	r = h.waitReport("s1", "drift after a local reload", func(r Report) bool { return r.Drift })
	if r.State != StateDrift || r.Effective.Hash != hashOf(local) || r.Applied.Version != 1 {
		t.Fatalf("after the reload: state %s effective %+v applied %+v; want drift, the local file's hash, applied 1", r.State, r.Effective, r.Applied)
	}
	if os.Getenv("WEIR_MEASURE") == "1" {
		// What the agent adds to a real gateway: one FleetState a second.
		res := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.FleetState()
			}
		})
		t.Logf("FleetState of a real gateway (1 source, 1 sink): %d ns/op, %d B/op; once a second = %.4f %% of a core",
			res.NsPerOp(), res.AllocedBytesPerOp(), float64(res.NsPerOp())/1e9*100)
	}
}

// auditHas reports whether a file of the gateway's audit trail under
// dataDir holds s (records are written asynchronously: polled).
func auditHas(t *testing.T, dataDir, s string) bool {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dataDir, "audit", "*"))
		for _, f := range files {
			if data, err := os.ReadFile(f); err == nil && strings.Contains(string(data), s) {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond) // polling, not synchronisation
	}
	return false
}
