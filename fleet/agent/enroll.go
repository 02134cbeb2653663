package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/curve25519"

	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/fleet/hub"
)

// Files is where a site keeps what enrolment gave it, under
// DATA_DIR/fleet: all 0600 in a 0700 directory.
type Files struct {
	Dir string
}

// SiteFiles are the fleet files of the data directory dataDir.
func SiteFiles(dataDir string) Files { return Files{Dir: filepath.Join(dataDir, "fleet")} }

// Creds is the site's NATS credentials (user JWT + nkey seed).
func (f Files) Creds() string { return filepath.Join(f.Dir, "site.creds") }

// BoxKey is the site's X25519 private key (32 bytes), for sealed secrets.
func (f Files) BoxKey() string { return filepath.Join(f.Dir, "box.key") }

// Store is the bundle store: pinned hub keys, last known-good bundle.
func (f Files) Store() string { return filepath.Join(f.Dir, "store") }

// Secrets is the site's own secrets file (NAME: value, 0600, optional).
func (f Files) Secrets() string { return filepath.Join(f.Dir, "secrets.yaml") }

// Resolved is where resolved secret values are written for the gateway.
func (f Files) Resolved() string { return filepath.Join(f.Dir, "resolved") }

// EnrollOptions say where the hub is and how to reach it once.
type EnrollOptions struct {
	URL, Site, Token string
	// EnrollCreds is the enrolment user's creds file the hub's operator
	// handed out with the token (it may only ask to enrol).
	EnrollCreds string
	// CAFile pins the hub's CA (tls://).
	CAFile string
	// Files receive the site's credentials, keys and pinned trust.
	Files Files
	Now   func() time.Time
}

// Enroll enrols the site with a one-time token: it makes the site's NATS
// nkey and X25519 key here (the private halves never leave the site), asks
// the hub on weir.enroll, and writes the creds file, the box key and the
// pinned hub keys (with the rotations since) under Files. An existing
// creds file is never overwritten: enrol again into an empty directory.
func Enroll(ctx context.Context, o EnrollOptions) (hub.EnrollReply, error) {
	if !hub.ValidSite(o.Site) {
		return hub.EnrollReply{}, fmt.Errorf("site %q: use 1 to 64 lowercase letters, digits, '_' or '-'", o.Site)
	}
	if o.Token == "" {
		return hub.EnrollReply{}, errors.New("a one-time enrolment token is required (weir hub token on the hub)")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if _, err := os.Stat(o.Files.Creds()); err == nil {
		return hub.EnrollReply{}, fmt.Errorf("%s exists: this data directory is enrolled already", o.Files.Creds())
	}
	user, err := nkeys.CreateUser()
	if err != nil {
		return hub.EnrollReply{}, err
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	boxPub, boxSec, err := bundle.NewSiteKey()
	if err != nil {
		return hub.EnrollReply{}, err
	}
	opts := []nats.Option{nats.Name("weir-enroll-" + o.Site), nats.Timeout(10 * time.Second)}
	if o.EnrollCreds != "" {
		opts = append(opts, nats.UserCredentials(o.EnrollCreds))
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return hub.EnrollReply{}, fmt.Errorf("hub %s: %w", o.URL, err)
	}
	defer nc.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := hub.RequestEnroll(rctx, nc, hub.EnrollRequest{Site: o.Site, Token: o.Token, SiteNKey: pub,
		SiteBoxPublic: base64.StdEncoding.EncodeToString(boxPub[:])})
	if err != nil {
		return r, err
	}
	trust, err := hub.TrustFromReply(r, o.Now())
	if err != nil {
		return r, fmt.Errorf("the hub's keys: %w", err)
	}
	creds, err := jwt.FormatUserConfig(r.JWT, seed)
	if err != nil {
		return r, fmt.Errorf("the hub's reply: %w", err)
	}
	if err := os.MkdirAll(o.Files.Dir, 0o700); err != nil {
		return r, err
	}
	// The trust store first: a site with creds and no pinned key could
	// connect and verify nothing.
	if _, err := bundle.OpenStore(o.Files.Store(), o.Site, trust, bundle.StoreOptions{Now: o.Now}); err != nil {
		return r, err
	}
	if err := os.WriteFile(o.Files.BoxKey(), boxSec[:], 0o600); err != nil {
		return r, err
	}
	if err := os.WriteFile(o.Files.Creds(), creds, 0o600); err != nil {
		return r, err
	}
	return r, nil
}

// OpenSite opens what enrolment left under f for site: the bundle store
// (trust as saved) and the secrets resolver with the site's box key.
func OpenSite(f Files, site string) (*bundle.Store, *bundle.SiteSecrets, error) {
	store, err := bundle.OpenStore(f.Store(), site, nil, bundle.StoreOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w (enrol the site first: weir enroll)", err)
	}
	secrets := &bundle.SiteSecrets{File: f.Secrets(), Dir: f.Resolved()}
	key, err := os.ReadFile(f.BoxKey())
	switch {
	case err == nil && len(key) == 32:
		var priv [32]byte
		copy(priv[:], key)
		pub, perr := boxPublic(&priv)
		if perr != nil {
			return nil, nil, perr
		}
		secrets.Private, secrets.Public = &priv, pub
	case err == nil:
		return nil, nil, fmt.Errorf("%s: not a 32-byte key", f.BoxKey())
	case !os.IsNotExist(err):
		return nil, nil, err
	}
	return store, secrets, nil
}

// boxPublic derives the X25519 public key of priv.
func boxPublic(priv *[32]byte) (*[32]byte, error) {
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("site box key: %w", err)
	}
	var out [32]byte
	copy(out[:], p)
	return &out, nil
}
