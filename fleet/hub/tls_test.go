package hub_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/weir-edge/weir/fleet/hub"
	"github.com/weir-edge/weir/fleet/hub/hubtest"
)

// TestTLSAuto: the generated CA is what a site pins; without it the
// site's connection is refused, with it the site works; the CLI's Dial
// finds the URL and the CA in the data dir.
func TestTLSAuto(t *testing.T) {
	dir := t.TempDir()
	h := hubtest.StartWith(t, dir, func(c *hub.Config) { c.TLSAuto = true })
	if !strings.HasPrefix(h.URL, "tls://") {
		t.Fatalf("URL %s, want tls://", h.URL)
	}
	if fp, err := hub.CAFingerprint(hub.CAPath(dir)); err != nil || !strings.HasPrefix(fp, "sha256:") {
		t.Fatalf("fingerprint %q %v", fp, err)
	}
	s1 := h.Enroll(t, "s1") // hubtest pins the CA when the hub has one
	if _, err := nats.Connect(h.URL, nats.UserCredentials(s1.CredsFile)); err == nil {
		t.Fatal("connected without the pinned CA")
	}
	nc := s1.Connect(t, h.URL)
	if _, err := nc.Request(hub.SubjectAskTrust, nil, 0); err != nil && !strings.Contains(err.Error(), "timeout") {
		t.Fatal(err)
	}
	d, err := hub.Dial(ctxT(t), hub.Config{DataDir: dir})
	if err != nil {
		t.Fatalf("dial the running hub: %v", err)
	}
	defer d.Close()
	if _, err := d.CreateToken(ctxT(t), "s2", nil, 0); err != nil {
		t.Fatal(err)
	}
}
