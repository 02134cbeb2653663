package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weir-edge/weir/fleet/bundle"
)

// rotationLead dates a new key this much before the rotation, since a
// site judges valid-from on its own clock (bundle: a lagging clock would
// refuse the new key's bundles).
const rotationLead = 10 * time.Minute

// Rotations returns every rotation statement, in order, base64 std of
// bundle.Rotation.Encode.
func (h *Hub) Rotations(ctx context.Context) ([]string, error) {
	names, err := kvKeys(ctx, h.trust)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("trust statements: %w", err)
	}
	sort.Strings(names) // rotation.<8 digits>: lexical is numeric order
	out := make([]string, 0, len(names))
	for _, k := range names {
		e, err := kvGet(ctx, h.trust, k)
		if err != nil {
			return nil, fmt.Errorf("trust statement %s: %w", k, err)
		}
		out = append(out, base64.StdEncoding.EncodeToString(e.Value()))
	}
	return out, nil
}

func (h *Hub) onAskTrust(m *nats.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rots, err := h.Rotations(ctx)
	if err != nil {
		h.log.Warn("trust request", "err", err)
		return
	}
	data, _ := json.Marshal(TrustReply{Rotations: rots})
	_ = m.Respond(data)
}

// RotateKey makes a new bundle signing key: a statement adding it (signed
// by the current key) and one retiring the current key (signed by the
// new one) are stored in order in weir_trust — republished to sites on
// weir.trust — and only then does the hub sign with the new key. Sites
// apply the statements in order. Returns the new key id.
func (h *Hub) RotateKey(ctx context.Context) (string, error) {
	h.signMu.Lock()
	defer h.signMu.Unlock()
	old, err := loadSigner(h.cfg.DataDir, false)
	if err != nil {
		return "", err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	next := bundle.NewSigner(priv)
	now := h.cfg.Now()
	add := old.AddKey(pub, now.Add(-rotationLead), now)
	retire := next.RetireKey(old.KeyID, now)
	n, err := h.nextRotation(ctx)
	if err != nil {
		return "", err
	}
	// Keep the new private key before publishing anything that names it:
	// a crash between leaves an unused file, never a trusted key lost.
	path := filepath.Join(h.cfg.DataDir, keysDir, signingKeyFile)
	if err := writeReplace(path+".next", []byte(hex.EncodeToString(priv.Seed())+"\n")); err != nil {
		return "", err
	}
	for i, r := range []*bundle.Rotation{add, retire} {
		if _, err := kvCreate(ctx, h.trust, fmt.Sprintf("rotation.%08d", n+i), r.Encode()); err != nil {
			return "", fmt.Errorf("key rotation: store statement %d: %w (another replica rotating?)", n+i, err)
		}
		// Live news for connected sites (a stream republish cannot map a
		// key to one fixed subject); sites also ask weir.hub.trust at every
		// connect, so a lost message is caught up there.
		if err := h.nc.Publish(SubjectTrust, r.Encode()); err != nil {
			h.log.Warn("key rotation: announce", "err", err)
		}
	}
	if err := os.Rename(path+".next", path); err != nil {
		return "", err
	}
	h.audit(ctx, AuditEntry{Action: "key.rotate", Detail: old.KeyID + " -> " + next.KeyID})
	return next.KeyID, nil
}

func (h *Hub) nextRotation(ctx context.Context) (int, error) {
	rots, err := h.Rotations(ctx)
	if err != nil {
		return 0, err
	}
	return len(rots), nil
}

// signer returns the key bundles are signed with now (re-read at each
// publish, so a rotation by one replica reaches the others).
func (h *Hub) signer() (*bundle.Signer, error) {
	h.signMu.Lock()
	defer h.signMu.Unlock()
	return loadSigner(h.cfg.DataDir, false)
}

// KeyFingerprint is the key id with its public key, for the operator.
func KeyFingerprint(s *bundle.Signer) string {
	return s.KeyID + " " + strings.ToLower(hex.EncodeToString(s.Public()))
}
