package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/fleet/hub"
	"github.com/weir-edge/weir/fleet/hub/hubtest"
)

// One NATS node of three killed under the site (it was connected to it):
// the site fails over to another node, gets the version published
// meanwhile, and its reports keep reaching the hub's stream.
func TestClusterNodeKilledUnderTheSite(t *testing.T) {
	c := hubtest.StartCluster(t)
	h := c.StartHub(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	files := SiteFiles(t.TempDir())
	if _, err := Enroll(ctx, EnrollOptions{URL: c.URL(), Site: "s1", Token: h.Token(t, "s1"), EnrollCreds: h.EnrollCreds, Files: files}); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	store, secrets, err := OpenSite(files, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.Secrets(), []byte("MQTT_PASSWORD: s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tgt := &fakeTarget{text: []byte("local: file\n")}
	// Node 0 first (no shuffling), so killing node 0 cuts the site off.
	a, err := New(Options{Site: "s1", URL: c.URL(), CredsFile: files.Creds(), Store: store, Secrets: secrets, Target: tgt,
		NATS:           []nats.Option{nats.DontRandomize(), nats.CustomReconnectDelay(func(int) time.Duration { return 100 * time.Millisecond })},
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
		t.Fatal(err)
	}
	waitSnapshot(t, a, "version 1 in sync", func(r Report) bool { return r.Applied.Version == res.Versions["s1"] && r.State == StateInSync })

	c.Kill(0)
	res, err = h.Publish(ctx, hub.LayerRef{Kind: bundle.KindSite, Name: "s1"}, []byte("log:\n  level: debug\n"))
	if err != nil {
		t.Fatalf("publish with a node down: %v", err)
	}
	want := res.Versions["s1"]
	waitSnapshot(t, a, "the version published with node 0 down", func(r Report) bool { return r.Applied.Version == want && r.State == StateInSync })
	js, err := h.Conn().JetStream()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangBound)
	for {
		var r Report
		m, err := js.GetLastMsg(hub.StreamReports, hub.SubjectReportPrefix+"s1")
		if err == nil && jsonInto(m.Data, &r) == nil && r.Applied.Version == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report of version %d in the stream with node 0 down (last err %v)", want, err)
		}
		time.Sleep(50 * time.Millisecond) // polling, not synchronisation
	}
}
