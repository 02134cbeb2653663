package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// TrustedKey is one hub key a site trusts.
type TrustedKey struct {
	ID     string
	Public ed25519.PublicKey
	// ValidFrom: the key signs nothing the site accepts before this time
	// (on the site's clock); zero for keys pinned at enrolment.
	ValidFrom time.Time
	// Retired is final: a retired key is never trusted again, whatever
	// its bundles say their issue time was (a leaked key can backdate).
	Retired   bool
	RetiredAt time.Time
}

// TrustStore holds the hub keys a site pins: key id → public key, with
// valid-from and retirement. It changes only by Pin (enrolment) and by
// Apply of a rotation signed by a key it trusts. Not safe for concurrent
// use: the Store that owns it serialises access.
type TrustStore struct {
	keys map[string]*TrustedKey
}

// NewTrustStore returns a store trusting pinned, valid from now on.
func NewTrustStore(pinned ...ed25519.PublicKey) (*TrustStore, error) {
	t := &TrustStore{keys: map[string]*TrustedKey{}}
	for _, p := range pinned {
		if err := t.Pin(p, time.Time{}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Pin trusts pub from validFrom on, as enrolment does: outside any signed
// statement, so only for the keys the site is installed with.
func (t *TrustStore) Pin(pub ed25519.PublicKey, validFrom time.Time) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: a public key is %d bytes, not %d", ErrRotation, ed25519.PublicKeySize, len(pub))
	}
	id := KeyID(pub)
	if k, ok := t.keys[id]; ok {
		if k.Retired {
			return fmt.Errorf("%w: key %s was retired; it cannot be pinned again", ErrRotation, id)
		}
		return nil
	}
	t.keys[id] = &TrustedKey{ID: id, Public: slices.Clone(pub), ValidFrom: validFrom.UTC()}
	return nil
}

// Keys returns the keys, by id.
func (t *TrustStore) Keys() []TrustedKey {
	out := make([]TrustedKey, 0, len(t.keys))
	for _, k := range t.keys {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b TrustedKey) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (t *TrustStore) active() int {
	n := 0
	for _, k := range t.keys {
		if !k.Retired {
			n++
		}
	}
	return n
}

// check verifies sig over msg by key id at now. allowRetired serves the
// site's own known-good copy, accepted when its key was trusted.
func (t *TrustStore) check(id string, msg, sig []byte, now time.Time, allowRetired bool) error {
	k, ok := t.keys[id]
	switch {
	case !ok:
		return fmt.Errorf("%w %s", ErrUnknownKey, id)
	case k.Retired && !allowRetired:
		return fmt.Errorf("%w %s (retired %s)", ErrRetiredKey, id, k.RetiredAt.Format(time.RFC3339))
	case now.Before(k.ValidFrom) && !allowRetired:
		return fmt.Errorf("%w: %s is valid from %s", ErrKeyNotYetValid, id, k.ValidFrom.Format(time.RFC3339))
	case !ed25519.Verify(k.Public, msg, sig):
		return fmt.Errorf("%w (key %s)", ErrBadSignature, id)
	}
	return nil
}

// Verify checks a bundle's signature against the trusted keys at now and
// its hash against its configuration. It does not check the site or the
// version: Store.Apply does.
func (t *TrustStore) Verify(b *Bundle, now time.Time) error {
	return t.verify(b, now, false)
}

func (t *TrustStore) verify(b *Bundle, now time.Time, allowRetired bool) error {
	if err := t.check(b.KeyID, b.SignedBytes(), b.Signature, now, allowRetired); err != nil {
		return fmt.Errorf("bundle for site %s version %d: %w", b.Site, b.Version, err)
	}
	if sum := sha256Sum(b.Config); sum != b.Hash {
		return fmt.Errorf("bundle for site %s version %d: %w", b.Site, b.Version, ErrHashMismatch)
	}
	return nil
}

// Rotation actions.
const (
	ActionAdd    = "add"
	ActionRetire = "retire"
)

// Rotation is a signed statement changing the trusted keys: add a key
// (valid from a time) or retire one. A key the site trusts signs it.
type Rotation struct {
	Action string
	// KeyID is the key added or retired; for add, KeyID(Public).
	KeyID     string
	Public    ed25519.PublicKey // add only
	ValidFrom time.Time         // add only
	IssuedAt  time.Time
	SignerID  string
	Signature []byte
}

const rotationDomain = "weir-keyrotation-v1\n"

// SignedBytes is the canonical encoding a rotation's signature covers:
// the domain "weir-keyrotation-v1\n", then length-prefixed action, key
// id, public key (empty for retire), valid_from and issued_at as Unix
// nanoseconds, and the signer's key id.
func (r *Rotation) SignedBytes() []byte {
	var w bytes.Buffer
	w.WriteString(rotationDomain)
	putBytes(&w, []byte(r.Action))
	putBytes(&w, []byte(r.KeyID))
	putBytes(&w, r.Public)
	putU64(&w, uint64(unixNano(r.ValidFrom)))
	putU64(&w, uint64(unixNano(r.IssuedAt)))
	putBytes(&w, []byte(r.SignerID))
	return w.Bytes()
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// AddKey returns a statement, signed by s, trusting pub from validFrom.
func (s *Signer) AddKey(pub ed25519.PublicKey, validFrom, now time.Time) *Rotation {
	r := &Rotation{Action: ActionAdd, KeyID: KeyID(pub), Public: slices.Clone(pub),
		ValidFrom: time.Unix(0, validFrom.UnixNano()).UTC(), IssuedAt: time.Unix(0, now.UnixNano()).UTC(), SignerID: s.KeyID}
	r.Signature = ed25519.Sign(s.private, r.SignedBytes())
	return r
}

// RetireKey returns a statement, signed by s, retiring key id.
func (s *Signer) RetireKey(id string, now time.Time) *Rotation {
	r := &Rotation{Action: ActionRetire, KeyID: id, IssuedAt: time.Unix(0, now.UnixNano()).UTC(), SignerID: s.KeyID}
	r.Signature = ed25519.Sign(s.private, r.SignedBytes())
	return r
}

// Apply verifies r against the keys trusted at now and applies it.
// Adding a key already trusted, or retiring one already retired, changes
// nothing; adding a retired key, retiring an unknown key or the last
// active one is refused.
func (t *TrustStore) Apply(r *Rotation, now time.Time) error {
	where := fmt.Sprintf("key rotation (%s %s, signed by %s)", r.Action, r.KeyID, r.SignerID)
	if err := t.check(r.SignerID, r.SignedBytes(), r.Signature, now, false); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	switch r.Action {
	case ActionAdd:
		if len(r.Public) != ed25519.PublicKeySize || KeyID(r.Public) != r.KeyID {
			return fmt.Errorf("%s: %w: key id does not match the public key", where, ErrRotation)
		}
		return t.Pin(r.Public, r.ValidFrom)
	case ActionRetire:
		k, ok := t.keys[r.KeyID]
		switch {
		case !ok:
			return fmt.Errorf("%s: %w: no such key", where, ErrRotation)
		case k.Retired:
			return nil
		case t.active() == 1:
			return fmt.Errorf("%s: %w: it is the last active key; add its successor first", where, ErrRotation)
		}
		k.Retired, k.RetiredAt = true, now.UTC()
		return nil
	}
	return fmt.Errorf("%s: %w: unknown action %q", where, ErrRotation, r.Action)
}

// maxRotationSize bounds an encoded rotation statement.
const maxRotationSize = 1 << 10

// Encode returns the statement's wire form: SignedBytes and the
// signature, as for a bundle.
func (r *Rotation) Encode() []byte {
	return append(r.SignedBytes(), r.Signature...)
}

// DecodeRotation parses a statement's wire form, strictly and bounded.
// Apply (TrustStore) checks its signature.
func DecodeRotation(data []byte) (*Rotation, error) {
	if len(data) > maxRotationSize {
		return nil, fmt.Errorf("key rotation: %w: larger than %d bytes", ErrMalformed, maxRotationSize)
	}
	w := wireReader{data: data}
	if !w.prefix(rotationDomain) {
		return nil, fmt.Errorf("key rotation: %w: not a weir-keyrotation-v1", ErrMalformed)
	}
	r := &Rotation{}
	r.Action = string(w.bytes("action", 16))
	r.KeyID = string(w.bytes("key id", 64))
	r.Public = w.bytes("public key", ed25519.PublicKeySize)
	r.ValidFrom = fromUnixNano(int64(w.u64()))
	r.IssuedAt = fromUnixNano(int64(w.u64()))
	r.SignerID = string(w.bytes("signer id", 64))
	r.Signature = w.fixed(ed25519.SignatureSize)
	if err := w.end(); err != nil {
		return nil, fmt.Errorf("key rotation: %w: %w", ErrMalformed, err)
	}
	switch {
	case r.Action != ActionAdd && r.Action != ActionRetire:
		return nil, fmt.Errorf("key rotation: %w: action must be add or retire", ErrMalformed)
	case !keyIDPattern.MatchString(r.KeyID) || !keyIDPattern.MatchString(r.SignerID):
		return nil, fmt.Errorf("key rotation: %w: key ids are ed25519:<16 hex digits>", ErrMalformed)
	case r.Action == ActionAdd && len(r.Public) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("key rotation: %w: add needs a %d-byte public key", ErrMalformed, ed25519.PublicKeySize)
	case r.Action == ActionRetire && (len(r.Public) != 0 || !r.ValidFrom.IsZero()):
		return nil, fmt.Errorf("key rotation: %w: retire takes no public key nor valid-from", ErrMalformed)
	}
	if len(r.Public) == 0 {
		r.Public = nil
	}
	return r, nil
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// trustState is the store's state on the site's disk.
type trustState struct {
	Keys []trustedKeyJSON `json:"keys"`
}

type trustedKeyJSON struct {
	Public    []byte    `json:"public"`
	ValidFrom time.Time `json:"valid_from"`
	Retired   bool      `json:"retired,omitempty"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
}

// MarshalJSON encodes the store's state for the site's disk.
func (t *TrustStore) MarshalJSON() ([]byte, error) {
	var s trustState
	for _, k := range t.Keys() {
		s.Keys = append(s.Keys, trustedKeyJSON{Public: k.Public, ValidFrom: k.ValidFrom, Retired: k.Retired, RetiredAt: k.RetiredAt})
	}
	return json.Marshal(s)
}

// UnmarshalJSON restores a state MarshalJSON wrote.
func (t *TrustStore) UnmarshalJSON(data []byte) error {
	var s trustState
	if err := strictJSON(data, &s); err != nil {
		return err
	}
	t.keys = map[string]*TrustedKey{}
	for _, k := range s.Keys {
		if len(k.Public) != ed25519.PublicKeySize {
			return fmt.Errorf("a public key is not %d bytes", ed25519.PublicKeySize)
		}
		id := KeyID(k.Public)
		t.keys[id] = &TrustedKey{ID: id, Public: k.Public, ValidFrom: k.ValidFrom, Retired: k.Retired, RetiredAt: k.RetiredAt}
	}
	return nil
}

// strictJSON decodes exactly one JSON object with no unknown fields.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the object")
	}
	return nil
}
