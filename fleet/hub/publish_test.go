package hub_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/fleet/hub"
	"github.com/weir-edge/weir/fleet/hub/hubtest"
)

func readLayer(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ref(t *testing.T, s string) hub.LayerRef {
	t.Helper()
	r, err := hub.ParseLayerRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestPublishSignedBundle: a published layer reaches the site as a bundle
// its pinned keys verify, in the KV bucket, through the republished
// subject and through the desired-state request.
func TestPublishSignedBundle(t *testing.T) {
	h := hubtest.Start(t)
	ctx := ctxT(t)
	s1 := h.Enroll(t, "s1", "eu", "line3")
	h.Enroll(t, "s2")
	nc := s1.Connect(t, h.URL)
	sub, err := nc.SubscribeSync(hub.SubjectDesiredPrefix + "s1")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()

	res, err := h.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Versions["s1"] != 1 || res.Versions["s2"] != 1 {
		t.Fatalf("base publish: versions %v, want s1 and s2 at 1", res.Versions)
	}
	for _, l := range []struct{ ref, file string }{{"group:eu", "group-eu.yaml"}, {"group:line3", "group-line3.yaml"}, {"site:s1", "site-s1.yaml"}} {
		if _, err := h.Publish(ctx, ref(t, l.ref), readLayer(t, l.file)); err != nil {
			t.Fatalf("publish %s: %v", l.ref, err)
		}
	}
	b, err := h.Desired(ctx, "s1")
	if err != nil || b == nil {
		t.Fatalf("desired s1: %v %v", b, err)
	}
	if b.Version != 4 {
		t.Fatalf("s1 version %d after base, eu, line3, site: want 4", b.Version)
	}
	if err := s1.Trust.Verify(b, time.Now()); err != nil {
		t.Fatalf("bundle does not verify with the pinned key: %v", err)
	}
	want, err := bundle.Render("s1", []bundle.Layer{{Kind: bundle.KindBase, Data: readLayer(t, "base.yaml")},
		{Kind: bundle.KindGroup, Name: "eu", Data: readLayer(t, "group-eu.yaml")},
		{Kind: bundle.KindGroup, Name: "line3", Data: readLayer(t, "group-line3.yaml")},
		{Kind: bundle.KindSite, Name: "s1", Data: readLayer(t, "site-s1.yaml")}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash != want.Hash {
		t.Fatal("the hub's rendering differs from bundle.Render of the same layers")
	}
	// s2 is in no group: only the base reached it.
	if b2, _ := h.Desired(ctx, "s2"); b2 == nil || b2.Version != 1 {
		t.Fatalf("s2: %v, want version 1 (base only)", b2)
	}
	// The republished subject delivered every version, the last one last.
	var last *bundle.Bundle
	for i := 0; i < 4; i++ {
		m, err := sub.NextMsg(2 * time.Minute)
		if err != nil {
			t.Fatalf("republished bundle %d: %v", i+1, err)
		}
		if last, err = bundle.Decode(m.Data); err != nil {
			t.Fatal(err)
		}
	}
	if last.Version != 4 {
		t.Fatalf("last republished version %d, want 4", last.Version)
	}
	// Publishing the same layer again changes nothing.
	res, err = h.Publish(ctx, ref(t, "site:s1"), readLayer(t, "site-s1.yaml"))
	if err != nil || len(res.Versions) != 0 {
		t.Fatalf("same layer again: %v %v, want no new version", res, err)
	}
	// The request path answers with the newest.
	m, err := nc.RequestWithContext(ctx, hub.SubjectAskDesired+"s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := bundle.Decode(m.Data); err != nil || got.Version != 4 {
		t.Fatalf("requested desired state: %v %v", got, err)
	}
}

// TestPublishRefused: ties, invalid configurations and clear secrets are
// refused with every problem, and nothing is stored.
func TestPublishRefused(t *testing.T) {
	h := hubtest.Start(t)
	ctx := ctxT(t)
	h.Enroll(t, "s1", "a", "b")
	h.Enroll(t, "s2", "a")
	if _, err := h.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(ctx, ref(t, "group:a"), []byte("log:\n  level: debug\n")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ref, layer string
		want             []string
	}{
		{"tie between groups", "group:b", "log:\n  level: warn\n", []string{"tie", `group "a"`, `group "b"`, "log.level"}},
		{"invalid config in the group", "group:a", "sinks:\n  - name: uns\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: a, qos: 7}\n",
			[]string{"qos", `site "s1"`, `site "s2"`}},
		{"clear secret", "site:s1", "sinks:\n  - name: uns\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: a, password: hunter2}\n", []string{"password"}},
		{"not yaml", "base", "sinks: [\n", []string{"base"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before1, _ := h.Desired(ctx, "s1")
			before2, _ := h.Desired(ctx, "s2")
			_, err := h.Publish(ctx, ref(t, c.ref), []byte(c.layer))
			if !errors.Is(err, hub.ErrRefused) {
				t.Fatalf("err %v, want ErrRefused", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Error("the refused secret is in the error")
			}
			after1, _ := h.Desired(ctx, "s1")
			after2, _ := h.Desired(ctx, "s2")
			if after1.Version != before1.Version || after2.Version != before2.Version {
				t.Errorf("a refused publish issued a bundle: s1 %d→%d s2 %d→%d", before1.Version, after1.Version, before2.Version, after2.Version)
			}
		})
	}
	// The stored layers are unchanged: a harmless publish of base again is a no-op.
	res, err := h.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml"))
	if err != nil || len(res.Versions) != 0 {
		t.Fatalf("after refusals: %v %v, want nothing changed", res, err)
	}
	entries, err := h.ReadAudit(ctx, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, e := range entries {
		if e.Action == "publish.refused" {
			refused++
		}
	}
	if refused != 4 {
		t.Fatalf("audit has %d refused publishes, want 4", refused)
	}
}

// TestReplicasConcurrent: two replicas on one NATS publishing at once
// give each site strictly increasing versions, none issued twice, and
// the newest bundle renders the newest layers.
func TestReplicasConcurrent(t *testing.T) {
	h1 := hubtest.Start(t)
	ctx := ctxT(t)
	h2 := hubtest.StartWith(t, h1.DataDir, func(c *hub.Config) { c.NATSURL = h1.URL; c.Replica = "r2" })
	for i := 0; i < 5; i++ {
		h1.Enroll(t, fmt.Sprintf("s%d", i), "g")
	}
	if _, err := h1.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	const rounds = 10
	for r, h := range []*hubtest.Hub{h1, h2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				layer := fmt.Sprintf("node:\n  id: r%d-%d\n", r, i)
				lr := "group:g"
				if r == 1 {
					layer = fmt.Sprintf("log:\n  level: %s\n", []string{"debug", "info"}[i%2])
					lr = "site:s0"
				}
				if _, err := h.Publish(ctx, ref(t, lr), []byte(layer)); err != nil {
					errs <- fmt.Errorf("replica %d round %d: %w", r, i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every version of s0 in the bucket's history is distinct and increasing.
	hist := h1.History(ctx, t, "s0")
	for i := 1; i < len(hist); i++ {
		if hist[i] <= hist[i-1] {
			t.Fatalf("s0 versions not increasing: %v", hist)
		}
	}
	b, _ := h1.Desired(ctx, "s0")
	want, err := bundle.Render("s0", []bundle.Layer{{Kind: bundle.KindBase, Data: readLayer(t, "base.yaml")},
		{Kind: bundle.KindGroup, Name: "g", Data: []byte(fmt.Sprintf("node:\n  id: r0-%d\n", rounds-1))},
		{Kind: bundle.KindSite, Name: "s0", Data: []byte("log:\n  level: info\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash != want.Hash {
		t.Fatalf("s0's newest bundle (v%d) is not the rendering of the newest layers", b.Version)
	}
	audit, err := h1.ReadAudit(ctx, 1, 100000)
	if err != nil {
		t.Fatalf("audit chain written by two replicas: %v", err)
	}
	seen := map[string]bool{}
	for _, e := range audit {
		if e.Action == "bundle.publish" {
			k := fmt.Sprintf("%s/%d", e.Site, e.Version)
			if seen[k] {
				t.Fatalf("version %s issued twice", k)
			}
			seen[k] = true
		}
	}
}

// TestRestartKeepsState: a hub restarted on its data dir keeps its keys,
// sites, layers and versions; an enrolled site's credentials still work.
func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t)
	h := hubtest.StartIn(t, dir)
	s1 := h.Enroll(t, "s1")
	if _, err := h.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml")); err != nil {
		t.Fatal(err)
	}
	kid, _ := h.KeyID(ctx)
	h.Close()

	h = hubtest.StartIn(t, dir)
	if k, _ := h.KeyID(ctx); k != kid {
		t.Fatalf("signing key changed across restart: %s → %s", kid, k)
	}
	res, err := h.Publish(ctx, ref(t, "site:s1"), readLayer(t, "site-s1.yaml"))
	if err != nil || res.Versions["s1"] != 2 {
		t.Fatalf("after restart: %v %v, want s1 at version 2", res, err)
	}
	nc := s1.Connect(t, h.URL)
	m, err := nc.RequestWithContext(ctx, hub.SubjectAskDesired+"s1", nil)
	if err != nil {
		t.Fatalf("site credentials after restart: %v", err)
	}
	b, err := bundle.Decode(m.Data)
	if err != nil || b.Version != 2 || s1.Trust.Verify(b, time.Now()) != nil {
		t.Fatalf("desired after restart: %v %v", b, err)
	}
	if _, err := h.ReadAudit(ctx, 1, 1000); err != nil {
		t.Fatalf("audit after restart: %v", err)
	}
}

// TestKeyRotation: after a rotation, new bundles are signed by the new
// key; a site applying the statements in order verifies them, and the
// old key is retired.
func TestKeyRotation(t *testing.T) {
	h := hubtest.Start(t)
	ctx := ctxT(t)
	s1 := h.Enroll(t, "s1")
	old, _ := h.KeyID(ctx)
	live, err := s1.Connect(t, h.URL).SubscribeSync(hub.SubjectTrust)
	if err != nil {
		t.Fatal(err)
	}
	newID, err := h.RotateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := h.KeyID(ctx); cur != newID || cur == old {
		t.Fatalf("key ids: old %s new %s current %s", old, newID, cur)
	}
	if _, err := h.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml")); err != nil {
		t.Fatal(err)
	}
	b, _ := h.Desired(ctx, "s1")
	if b.KeyID != newID {
		t.Fatalf("bundle signed by %s, want %s", b.KeyID, newID)
	}
	if err := s1.Trust.Verify(b, time.Now()); err == nil {
		t.Fatal("a site that has not applied the rotation accepted the new key")
	}
	rots, err := h.Rotations(ctx)
	if err != nil || len(rots) != 2 {
		t.Fatalf("rotations %d %v, want add + retire", len(rots), err)
	}
	// The live announcements carry the same statements, in order.
	for i := range rots {
		m, err := live.NextMsg(2 * time.Minute)
		if err != nil {
			t.Fatalf("statement %d on %s: %v", i, hub.SubjectTrust, err)
		}
		if got := base64.StdEncoding.EncodeToString(m.Data); got != rots[i] {
			t.Fatalf("statement %d on %s differs from the stored one", i, hub.SubjectTrust)
		}
	}
	if err := hub.ApplyRotations(s1.Trust, rots, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s1.Trust.Verify(b, time.Now()); err != nil {
		t.Fatalf("after applying the rotations: %v", err)
	}
	// A site enrolled after the rotation reaches the same trust.
	s2 := h.Enroll(t, "s2")
	if err := s2.Trust.Verify(b, time.Now()); err != nil {
		t.Fatalf("site enrolled after the rotation: %v", err)
	}
}

// TestRotationReachesReplicas: a replica on another machine (its own copy
// of keys/) signs with the key another replica rotated to.
func TestRotationReachesReplicas(t *testing.T) {
	h1 := hubtest.Start(t)
	ctx := ctxT(t)
	dir2 := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir2, "keys"), os.DirFS(filepath.Join(h1.DataDir, "keys"))); err != nil {
		t.Fatal(err)
	}
	h2 := hubtest.StartWith(t, dir2, func(c *hub.Config) { c.NATSURL = h1.URL; c.Replica = "r2" })
	h1.Enroll(t, "s1")
	newID, err := h1.RotateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := h2.KeyID(ctx); err != nil || got != newID {
		t.Fatalf("replica 2 signs with %s (%v), want %s", got, err, newID)
	}
	if _, err := h2.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml")); err != nil {
		t.Fatal(err)
	}
	if b, _ := h1.Desired(ctx, "s1"); b.KeyID != newID {
		t.Fatalf("bundle by replica 2 signed by %s, want %s", b.KeyID, newID)
	}
}

// TestSealedSecretReachesSite: a secret sealed at the hub to the site's
// enrolment key travels in the bundle only as ${sealed:…} and opens on
// the site.
func TestSealedSecretReachesSite(t *testing.T) {
	h := hubtest.Start(t)
	ctx := ctxT(t)
	s1 := h.Enroll(t, "s1")
	sealed, err := h.Seal(ctx, "s1", []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	layer := "sinks:\n  - name: uns\n    mqtt:\n      url: mqtts://broker.eu:8883\n      topic_prefix: weir/eu\n      password: " + sealed + "\n"
	if _, err := h.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(ctx, ref(t, "site:s1"), []byte(layer)); err != nil {
		t.Fatal(err)
	}
	b, _ := h.Desired(ctx, "s1")
	if strings.Contains(string(b.Config), "hunter2") || !strings.Contains(string(b.Config), "${sealed:") {
		t.Fatalf("bundle config:\n%s", b.Config)
	}
	dir := t.TempDir()
	sec := &bundle.SiteSecrets{Dir: dir, Public: s1.BoxPublic, Private: s1.BoxSecret}
	out, err := sec.Resolve(b.Config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2") {
		t.Fatal("resolved config holds the secret in clear")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	found := false
	for _, f := range files {
		if b, _ := os.ReadFile(f); string(b) == "hunter2" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the site did not open the sealed secret into a file (%v)", files)
	}
	if _, err := h.Seal(ctx, "nobody", []byte("x")); err == nil {
		t.Fatal("sealed to an unknown site")
	}
}
