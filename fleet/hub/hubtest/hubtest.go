// Package hubtest starts a real hub (embedded NATS with JetStream in a
// temporary directory, on a random port) for tests of the hub and of the
// site agent, and enrols sites into it.
package hubtest

import (
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/fleet/hub"
)

// Hub is a running test hub.
type Hub struct {
	*hub.Hub
	DataDir string
	// URL is where sites connect; EnrollCreds is the enrolment user's
	// creds file.
	URL         string
	EnrollCreds string
}

// Start starts a hub in t.TempDir() on 127.0.0.1, a random port; it is
// closed at the end of the test.
func Start(t testing.TB) *Hub {
	t.Helper()
	return StartIn(t, t.TempDir())
}

// StartIn starts a hub on dataDir (to restart one on the same state).
func StartIn(t testing.TB, dataDir string) *Hub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := hub.Open(ctx, hub.Config{DataDir: dataDir, Listen: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("hubtest: start hub: %v", err)
	}
	t.Cleanup(h.Close)
	return &Hub{Hub: h, DataDir: dataDir, URL: h.URL(), EnrollCreds: h.EnrollCredsPath()}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WEIR_HUB_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Token registers site with groups and returns a one-time enrolment token.
func (h *Hub) Token(t testing.TB, site string, groups ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tok, err := h.CreateToken(ctx, site, groups, 0)
	if err != nil {
		t.Fatalf("hubtest: token for %s: %v", site, err)
	}
	return tok
}

// Site is an enrolled site: its creds file (0600) and what it pinned.
type Site struct {
	ID        string
	CredsFile string
	JWT       string
	Seed      []byte
	Trust     *bundle.TrustStore
	BoxPublic *[32]byte
	BoxSecret *[32]byte
	Groups    []string
	tls       []nats.Option
}

// Enroll makes a token for site and enrols it the way an agent does:
// a fresh nkey and box key, a request on weir.enroll over the enrolment
// creds; the creds file lands in t.TempDir().
func (h *Hub) Enroll(t testing.TB, site string, groups ...string) Site {
	t.Helper()
	tok := h.Token(t, site, groups...)
	s, err := h.EnrollWith(site, tok)
	if err != nil {
		t.Fatalf("hubtest: %v", err)
	}
	s.tls = h.TLSOptions()
	s.CredsFile = filepath.Join(t.TempDir(), site+".creds")
	creds, err := jwt.FormatUserConfig(s.JWT, s.Seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.CredsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// EnrollWith enrols site with token (no creds file written).
func (h *Hub) EnrollWith(site, token string) (Site, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u, err := nkeys.CreateUser()
	if err != nil {
		return Site{}, err
	}
	pub, _ := u.PublicKey()
	seed, _ := u.Seed()
	boxPub, boxSec, err := bundle.NewSiteKey()
	if err != nil {
		return Site{}, err
	}
	nc, err := nats.Connect(h.URL, append(h.TLSOptions(), nats.UserCredentials(h.EnrollCreds), nats.Timeout(10*time.Second))...)
	if err != nil {
		return Site{}, err
	}
	defer nc.Close()
	r, err := hub.RequestEnroll(ctx, nc, hub.EnrollRequest{Site: site, Token: token, SiteNKey: pub,
		SiteBoxPublic: base64.StdEncoding.EncodeToString(boxPub[:])})
	if err != nil {
		return Site{}, err
	}
	ts, err := hub.TrustFromReply(r, time.Now())
	if err != nil {
		return Site{}, err
	}
	return Site{ID: site, JWT: r.JWT, Seed: seed, Trust: ts, BoxPublic: boxPub, BoxSecret: boxSec, Groups: r.Groups}, nil
}

// TLSOptions pin the hub's generated CA when it has one (tls_auto).
func (h *Hub) TLSOptions() []nats.Option {
	if _, err := os.Stat(hub.CAPath(h.DataDir)); err == nil {
		return []nats.Option{nats.RootCAs(hub.CAPath(h.DataDir))}
	}
	return nil
}

// Connect connects as the site (its creds, its inbox prefix, the hub's
// CA when it made one); closed at the end of the test. Extra options go
// after the defaults.
func (s Site) Connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	all := append(append([]nats.Option{}, s.tls...), nats.UserCredentials(s.CredsFile),
		nats.CustomInboxPrefix(hub.InboxPrefix(s.ID)), nats.Timeout(10*time.Second))
	all = append(all, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		t.Fatalf("hubtest: connect as site %s: %v", s.ID, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// StartWith starts a hub on dataDir with its configuration adjusted by fn
// (a fake clock, a replica name).
func StartWith(t testing.TB, dataDir string, fn func(*hub.Config)) *Hub {
	t.Helper()
	h, err := Open(t, dataDir, fn)
	if err != nil {
		t.Fatalf("hubtest: start hub: %v", err)
	}
	return h
}

// Open is StartWith returning the error instead of failing the test:
// safe to call from another goroutine (replicas of a cluster start
// together, each waiting for the others).
func Open(t testing.TB, dataDir string, fn func(*hub.Config)) (*Hub, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := hub.Config{DataDir: dataDir, Listen: "127.0.0.1:0", Logger: testLogger(t)}
	if fn != nil {
		fn(&cfg)
	}
	h, err := hub.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(h.Close)
	return &Hub{Hub: h, DataDir: dataDir, URL: h.URL(), EnrollCreds: h.EnrollCredsPath()}, nil
}

// History returns the versions of site's bundles kept in weir_desired,
// oldest first.
func (h *Hub) History(ctx context.Context, t testing.TB, site string) []uint64 {
	t.Helper()
	vs, err := h.Versions(ctx, site)
	if err != nil {
		t.Fatalf("hubtest: history of %s: %v", site, err)
	}
	return vs
}
