package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/fleet/hub"
	"github.com/weir-edge/weir/fleet/hub/hubtest"
)

// Against the real hub (branch hub's, TLS with its generated CA): the
// site enrols with a one-time token (creds, box key, pinned keys written
// 0600), connects with its own credentials over TLS, follows the layers
// the operator publishes and reports to WEIR_REPORTS.
func TestWithRealHub(t *testing.T) {
	h := hubtest.StartWith(t, t.TempDir(), func(c *hub.Config) { c.TLSAuto = true })
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	files := SiteFiles(t.TempDir())
	ca := hub.CAPath(h.DataDir)
	tok := h.Token(t, "s1", "eu")
	if _, err := Enroll(ctx, EnrollOptions{URL: h.URL, Site: "s1", Token: tok, EnrollCreds: h.EnrollCreds, CAFile: ca, Files: files}); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	for _, f := range []string{files.Creds(), files.BoxKey()} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", f, err, fi.Mode())
		}
	}
	if _, err := Enroll(ctx, EnrollOptions{URL: h.URL, Site: "s1", Token: tok, EnrollCreds: h.EnrollCreds, CAFile: ca, Files: SiteFiles(t.TempDir())}); err == nil {
		t.Fatal("a used token enrolled a second time")
	}
	if err := os.WriteFile(files.Secrets(), []byte("MQTT_PASSWORD: s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, secrets, err := OpenSite(files, "s1")
	if err != nil {
		t.Fatal(err)
	}
	tgt := &fakeTarget{text: []byte("local: file\n")}
	a, err := New(Options{Site: "s1", URL: h.URL, CredsFile: files.Creds(), CAFile: ca, Store: store, Secrets: secrets, Target: tgt,
		ReportInterval: time.Second, Dwell: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { acancel(); <-done }()

	base, err := os.ReadFile(filepath.Join("..", "hub", "testdata", "base.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Publish(ctx, hub.LayerRef{Kind: bundle.KindBase}, base)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	want := res.Versions["s1"]
	waitSnapshot(t, a, "the published version in sync", func(r Report) bool { return r.Applied.Version == want && r.State == StateInSync })
	if running := string(tgt.Running()); !strings.Contains(running, "password:") || strings.Contains(running, "s3cret") || strings.Contains(running, "${secret:") {
		t.Fatalf("the gateway got:\n%s\nwant the secret as a file reference, never its value", running)
	}
	if _, err := os.Stat(filepath.Join(files.Resolved(), "MQTT_PASSWORD")); err != nil {
		t.Fatalf("version 1's secret is not resolved to a file: %v", err)
	}
	// A key rotation: the site follows the signed statements, then takes
	// the next version, signed by the new key.
	newKey, err := h.RotateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// …and a secret sealed by the hub to this site's key (weir hub seal)
	// replaces the base's reference: opened with the box key enrol made.
	sealed, err := h.Seal(ctx, "s1", []byte("sealed-pw"))
	if err != nil {
		t.Fatal(err)
	}
	siteLayer := "log:\n  level: debug\nsinks:\n  - name: uns\n    mqtt:\n      url: mqtts://broker.plant:8883\n      topic_prefix: weir/v1\n      qos: 1\n      password: " + sealed + "\n"
	res, err = h.Publish(ctx, hub.LayerRef{Kind: bundle.KindSite, Name: "s1"}, []byte(siteLayer))
	if err != nil {
		t.Fatalf("publish after the rotation: %v", err)
	}
	want = res.Versions["s1"]
	waitSnapshot(t, a, "the version signed by the new key in sync", func(r Report) bool { return r.Applied.Version == want && r.State == StateInSync })
	if running := string(tgt.Running()); strings.Contains(running, "sealed-pw") || strings.Contains(running, "${sealed:") {
		t.Fatalf("the gateway got:\n%s\nwant the sealed secret as a file reference", running)
	}
	found := false
	entries, _ := os.ReadDir(files.Resolved())
	for _, e := range entries {
		if data, err := os.ReadFile(filepath.Join(files.Resolved(), e.Name())); err == nil && string(data) == "sealed-pw" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no resolved secret file in %s holds the sealed value", files.Resolved())
	}
	// Version 1's secret is no longer named: its file is pruned.
	if _, err := os.Stat(filepath.Join(files.Resolved(), "MQTT_PASSWORD")); !os.IsNotExist(err) {
		t.Fatalf("the resolved secret version 2 no longer names is still there: %v", err)
	}
	if b := store.Current(); b.KeyID != newKey {
		t.Fatalf("known-good signed by %s, want the new key %s", b.KeyID, newKey)
	}
	retired := 0
	for _, k := range store.Keys() {
		if k.Retired {
			retired++
		}
	}
	if retired != 1 {
		t.Fatalf("trusted keys %+v: want the old one retired", store.Keys())
	}
	// The hub sees the report in its stream.
	nc := h.Conn()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangBound)
	for {
		m, err := js.GetLastMsg(hub.StreamReports, hub.SubjectReportPrefix+"s1")
		if err == nil && len(m.Data) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report of s1 in %s: %v", hub.StreamReports, err)
		}
		time.Sleep(50 * time.Millisecond) // polling, not synchronisation
	}
}

// waitSnapshot polls the agent's own view until ok holds.
func waitSnapshot(t *testing.T, a *Agent, what string, ok func(Report) bool) Report {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for {
		r := a.Snapshot()
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the site never had %s; last: %+v (rollback %+v, refused %+v)", what, r, r.Rollback, r.Refused)
		}
		time.Sleep(20 * time.Millisecond) // polling, not synchronisation
	}
}
