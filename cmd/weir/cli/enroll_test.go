package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/fleet/agent"
	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/fleet/hub"
	"github.com/weir-edge/weir/fleet/hub/hubtest"
	"github.com/weir-edge/weir/sim"
)

// The way an installer does it: weir enroll with the token, the hub's
// enrolment creds and CA; then weir run FILE with a hub block. The
// gateway starts on its own file, follows the hub's layer (hot reload),
// and keeps it as known-good; it stops cleanly.
func TestEnrollThenRunFollowsHub(t *testing.T) {
	h := hubtest.StartWith(t, t.TempDir(), func(c *hub.Config) { c.TLSAuto = true })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	plant, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: 1, NoFaults: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer plant.Close()
	dataDir := t.TempDir()

	c, _ := lookup("enroll")
	var out, errOut bytes.Buffer
	if err := dispatch(ctx, c, []string{"-hub", h.URL, "-site", "s1", "-token", h.Token(t, "s1"), "-enroll-creds", h.EnrollCreds,
		"-ca", hub.CAPath(h.DataDir), "-data-dir", dataDir}, &out, &errOut); err != nil {
		t.Fatalf("weir enroll: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "enrolled site s1") {
		t.Fatalf("weir enroll said: %s", out.String())
	}

	layer := func(interval string) string {
		tags, err := yaml.Marshal(sim.PlantTags()[:2])
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "sources:\n  - name: plc\n    modbus:\n      devices:\n        - name: filler\n          address: %q\n          unit_id: 1\n          namespace: acme/plant1\n          groups:\n            - interval: %s\n              tags:\n", plant.Addr(), interval)
		for _, line := range strings.Split(strings.TrimRight(string(tags), "\n"), "\n") {
			b.WriteString("                " + line + "\n")
		}
		fmt.Fprintf(&b, "sinks:\n  - name: hist\n    historian:\n      dir: %s\n", filepath.Join(dataDir, "historian"))
		return b.String()
	}
	site := filepath.Join(t.TempDir(), "weir.yaml")
	file := fmt.Sprintf("hub:\n  url: %s\n  site: s1\n  dwell: 500ms\n  report_interval: 1s\n", h.URL) + layer("1s")
	if err := os.WriteFile(site, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := h.Publish(ctx, hub.LayerRef{Kind: bundle.KindBase}, []byte(layer("250ms")))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	want := res.Versions["s1"]

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		r, _ := lookup("run")
		done <- dispatch(runCtx, r, []string{"--data-dir", dataDir, site}, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	known := filepath.Join(agent.SiteFiles(dataDir).Store(), "known-good.bundle")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if data, err := os.ReadFile(known); err == nil {
			if b, err := bundle.Decode(data); err == nil && b.Version == want {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("weir run ended before the version was known-good: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %d never became known-good in %s", want, known)
		}
		time.Sleep(50 * time.Millisecond) // polling, not synchronisation
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("weir run: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("weir run did not stop")
	}
}
