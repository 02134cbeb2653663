package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"golang.org/x/crypto/nacl/secretbox"

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
	names = slices.DeleteFunc(names, func(k string) bool { return !strings.HasPrefix(k, "rotation.") })
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

// RotateKey makes a new bundle signing key and moves the fleet to it in
// three steps, each safe to stop after: (1) a statement adding the new
// key, signed by the current one, stored in weir_trust and announced on
// weir.trust — sites now trust both; (2) the new key becomes the current
// one for every replica (compare-and-set, so of two rotations at once
// one fails); (3) a statement retiring the old key, signed by the new.
// Returns the new key id.
func (h *Hub) RotateKey(ctx context.Context) (string, error) {
	old, rev, err := h.currentSigner(ctx)
	if err != nil {
		return "", err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	next := bundle.NewSigner(priv)
	now := h.cfg.Now()
	n, err := h.nextRotation(ctx)
	if err != nil {
		return "", err
	}
	if err := h.storeRotation(ctx, n, old.AddKey(pub, now.Add(-rotationLead), now)); err != nil {
		return "", err
	}
	sealed, err := h.sealSigningKey(priv)
	if err != nil {
		return "", err
	}
	if _, err := kvUpdate(ctx, h.trust, currentKeyName, sealed, rev); err != nil {
		return "", fmt.Errorf("key rotation: switch to %s: %w (another replica rotating? %s is trusted but unused)", next.KeyID, err, next.KeyID)
	}
	if err := h.storeRotation(ctx, n+1, next.RetireKey(old.KeyID, now)); err != nil {
		return "", fmt.Errorf("%w; bundles are signed by %s already, rotate again to retire %s", err, next.KeyID, old.KeyID)
	}
	h.audit(ctx, AuditEntry{Action: "key.rotate", Detail: old.KeyID + " -> " + next.KeyID})
	return next.KeyID, nil
}

func (h *Hub) storeRotation(ctx context.Context, n int, r *bundle.Rotation) error {
	if _, err := kvCreate(ctx, h.trust, fmt.Sprintf("rotation.%08d", n), r.Encode()); err != nil {
		return fmt.Errorf("key rotation: store statement %d: %w (another replica rotating?)", n, err)
	}
	// Live news for connected sites (a stream republish cannot map a key
	// to one fixed subject); sites also ask weir.hub.trust at every
	// connect, so a lost message is caught up there.
	if err := h.nc.Publish(SubjectTrust, r.Encode()); err != nil {
		h.log.Warn("key rotation: announce", "err", err)
	}
	return nil
}

func (h *Hub) nextRotation(ctx context.Context) (int, error) {
	rots, err := h.Rotations(ctx)
	if err != nil {
		return 0, err
	}
	return len(rots), nil
}

// currentKeyName is the weir_trust key holding the current bundle signing
// key, sealed (sealSigningKey): every replica signs with it, so a rotation
// by one reaches all without copying files.
const currentKeyName = "signing.current"

// signingSealKey derives the key sealing the bundle signing key in NATS
// from the account signing seed, which every replica holds (keys/) and
// NATS never sees.
func (h *Hub) signingSealKey() (*[32]byte, error) {
	seed, err := h.keys.signing.Seed()
	if err != nil {
		return nil, err
	}
	k := sha256.Sum256(append([]byte("weir-hub-bundle-key-seal-v1\n"), seed...))
	return &k, nil
}

func (h *Hub) sealSigningKey(priv ed25519.PrivateKey) ([]byte, error) {
	k, err := h.signingSealKey()
	if err != nil {
		return nil, err
	}
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	return secretbox.Seal(nonce[:], priv.Seed(), &nonce, k), nil
}

func (h *Hub) openSigningKey(sealed []byte) (*bundle.Signer, error) {
	k, err := h.signingSealKey()
	if err != nil {
		return nil, err
	}
	if len(sealed) < 24 {
		return nil, errors.New("hub signing key in NATS: damaged")
	}
	var nonce [24]byte
	copy(nonce[:], sealed)
	seed, ok := secretbox.Open(nil, sealed[24:], &nonce, k)
	if !ok || len(seed) != ed25519.SeedSize {
		return nil, errors.New("hub signing key in NATS: does not open with this hub's keys (another hub's NATS?)")
	}
	return bundle.NewSigner(ed25519.NewKeyFromSeed(seed)), nil
}

// currentSigner returns the current bundle signing key and its revision
// in weir_trust; on the hub's first start it is the genesis key from
// keys/bundle-signing.key, stored then.
func (h *Hub) currentSigner(ctx context.Context) (*bundle.Signer, uint64, error) {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		e, err := kvGet(ctx, h.trust, currentKeyName)
		if err == nil {
			s, err := h.openSigningKey(e.Value())
			return s, e.Revision(), err
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, 0, fmt.Errorf("hub signing key: %w", err)
		}
		genesis, err := loadSigningKey(h.cfg.DataDir, false)
		if err != nil {
			return nil, 0, err
		}
		sealed, err := h.sealSigningKey(genesis)
		if err != nil {
			return nil, 0, err
		}
		if _, err := kvCreate(ctx, h.trust, currentKeyName, sealed); err != nil && !isConflict(err) {
			return nil, 0, fmt.Errorf("hub signing key: %w", err)
		}
	}
	return nil, 0, errors.New("hub signing key: kept changing; try again")
}

// signer returns the key bundles are signed with now.
func (h *Hub) signer(ctx context.Context) (*bundle.Signer, error) {
	s, _, err := h.currentSigner(ctx)
	return s, err
}

// KeyFingerprint is the key id with its public key, for the operator.
func KeyFingerprint(s *bundle.Signer) string {
	return s.KeyID + " " + strings.ToLower(hex.EncodeToString(s.Public()))
}
