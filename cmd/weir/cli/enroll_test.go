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

	"github.com/weir-edge/weir/config"
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

// The hub block weir run follows: the file's, the flags over it, the
// creds and CA weir enroll wrote by default; none without either.
func TestHubBlock(t *testing.T) {
	dataDir := t.TempDir()
	files := agent.SiteFiles(dataDir)
	if err := os.MkdirAll(files.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(files.Dir, hubCAFile), []byte("ca"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileBlock := &config.Hub{URL: "tls://hub.a:4222", Site: "s1", CredsFile: "/etc/weir/s1.creds", CAFile: "/etc/weir/ca.pem"}
	for _, tc := range []struct {
		name    string
		flags   runFlags
		block   *config.Hub
		want    *config.Hub
		wantErr string
	}{
		{name: "neither", want: nil},
		{name: "file only", block: fileBlock, want: fileBlock},
		{name: "flags over the file", block: fileBlock, flags: runFlags{hubURL: "tls://hub.b:4222", hubSite: "s2", hubCreds: "/x.creds"},
			want: &config.Hub{URL: "tls://hub.b:4222", Site: "s2", CredsFile: "/x.creds", CAFile: "/etc/weir/ca.pem"}},
		{name: "flags only: enrol's files", flags: runFlags{hubURL: "tls://hub.b:4222", hubSite: "s2"},
			want: &config.Hub{URL: "tls://hub.b:4222", Site: "s2", CredsFile: files.Creds(), CAFile: filepath.Join(files.Dir, hubCAFile)}},
		{name: "site missing", flags: runFlags{hubURL: "tls://hub.b:4222"}, wantErr: "site"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{DataDir: dataDir, Hub: tc.block}
			got, err := hubBlock(tc.flags, cfg)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want):
				t.Fatalf("hub block = %+v, want %+v", got, tc.want)
			}
		})
	}
}
