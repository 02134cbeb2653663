package bundle

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// signer returns a deterministic hub key n.
func signer(n byte) *Signer {
	return NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize)))
}

func trustOf(t *testing.T, ss ...*Signer) *TrustStore {
	t.Helper()
	var pubs []ed25519.PublicKey
	for _, s := range ss {
		pubs = append(pubs, s.Public())
	}
	ts, err := NewTrustStore(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func rendered(t *testing.T, siteID, extra string) *Rendered {
	t.Helper()
	r, err := Render(siteID, []Layer{base(extra)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func issue(t *testing.T, s *Signer, r *Rendered, version uint64) *Bundle {
	t.Helper()
	b, err := s.Issue(r, version, t0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	b := issue(t, signer(1), rendered(t, "s1", ""), 7)
	got, err := Decode(b.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Site != b.Site || got.Version != b.Version || got.Hash != b.Hash || !bytes.Equal(got.Config, b.Config) ||
		!got.IssuedAt.Equal(b.IssuedAt) || got.KeyID != b.KeyID || !bytes.Equal(got.Signature, b.Signature) {
		t.Errorf("round trip changed the bundle:\n%+v\n%+v", got, b)
	}
	if !bytes.Equal(got.Encode(), b.Encode()) {
		t.Error("re-encoding differs")
	}
	if err := trustOf(t, signer(1)).Verify(got, t0); err != nil {
		t.Errorf("decoded bundle does not verify: %v", err)
	}
}

// A change to any byte of an encoded bundle is refused, by Decode or by
// Verify: every field is under the signature, the encoding is canonical.
func TestTamperedByteAnywhereRefused(t *testing.T) {
	b := issue(t, signer(1), rendered(t, "s1", ""), 7)
	wire := b.Encode()
	trust := trustOf(t, signer(1))
	for i := range wire {
		for _, flip := range []byte{0x01, 0x80} {
			bad := bytes.Clone(wire)
			bad[i] ^= flip
			d, err := Decode(bad)
			if err == nil {
				err = trust.Verify(d, t0)
			}
			if err == nil {
				t.Fatalf("byte %d ^ %#x: accepted", i, flip)
			}
		}
	}
	// Truncated or extended.
	for _, bad := range [][]byte{wire[:len(wire)-1], append(bytes.Clone(wire), 0), wire[:10], nil} {
		if _, err := Decode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: got %v, want ErrMalformed", len(bad), err)
		}
	}
}

func TestVerify(t *testing.T) {
	hub, other := signer(1), signer(2)
	r := rendered(t, "s1", "")
	tests := []struct {
		name   string
		bundle func() *Bundle
		trust  func() *TrustStore
		now    time.Time
		err    error
	}{
		{name: "good", bundle: func() *Bundle { return issue(t, hub, r, 1) }, trust: func() *TrustStore { return trustOf(t, hub) }},
		{name: "unknown key", err: ErrUnknownKey,
			bundle: func() *Bundle { return issue(t, other, r, 1) }, trust: func() *TrustStore { return trustOf(t, hub) }},
		{name: "key id of a trusted key, signed by another", err: ErrBadSignature,
			bundle: func() *Bundle {
				b := issue(t, other, r, 1)
				b.KeyID = hub.KeyID
				return b
			}, trust: func() *TrustStore { return trustOf(t, hub, other) }},
		{name: "config changed after signing", err: ErrBadSignature,
			bundle: func() *Bundle {
				b := issue(t, hub, r, 1)
				b.Config = append(bytes.Clone(b.Config), '#')
				return b
			}, trust: func() *TrustStore { return trustOf(t, hub) }},
		{name: "hash not of the config, signed", err: ErrHashMismatch,
			bundle: func() *Bundle {
				b := issue(t, hub, r, 1)
				b.Hash[0] ^= 1
				b.Signature = ed25519.Sign(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)), b.SignedBytes())
				return b
			}, trust: func() *TrustStore { return trustOf(t, hub) }},
		{name: "retired key refused", err: ErrRetiredKey,
			bundle: func() *Bundle { return issue(t, other, r, 1) },
			trust: func() *TrustStore {
				ts := trustOf(t, hub, other)
				if err := ts.Apply(hub.RetireKey(other.KeyID, t0), t0); err != nil {
					t.Fatal(err)
				}
				return ts
			}},
		{name: "key not yet valid", err: ErrKeyNotYetValid, now: t0,
			bundle: func() *Bundle { return issue(t, other, r, 1) },
			trust: func() *TrustStore {
				ts := trustOf(t, hub)
				if err := ts.Apply(hub.AddKey(other.Public(), t0.Add(time.Hour), t0), t0); err != nil {
					t.Fatal(err)
				}
				return ts
			}},
		{name: "rotated-in key accepted once valid", now: t0.Add(2 * time.Hour),
			bundle: func() *Bundle { return issue(t, other, r, 1) },
			trust: func() *TrustStore {
				ts := trustOf(t, hub)
				if err := ts.Apply(hub.AddKey(other.Public(), t0.Add(time.Hour), t0), t0); err != nil {
					t.Fatal(err)
				}
				return ts
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			err := tt.trust().Verify(tt.bundle(), now)
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("got %v, want %v", err, tt.err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	a, b, c := signer(1), signer(2), signer(3)
	type step struct {
		rot *Rotation
		err error
	}
	tests := []struct {
		name   string
		pinned []*Signer
		steps  []step
		active []string // key ids not retired at the end
	}{
		{name: "add then retire the old key", pinned: []*Signer{a},
			steps:  []step{{rot: a.AddKey(b.Public(), t0, t0)}, {rot: b.RetireKey(a.KeyID, t0)}},
			active: []string{b.KeyID}},
		{name: "a key retires itself once its successor is in", pinned: []*Signer{a},
			steps:  []step{{rot: a.AddKey(b.Public(), t0, t0)}, {rot: a.RetireKey(a.KeyID, t0)}},
			active: []string{b.KeyID}},
		{name: "signed by an unknown key", pinned: []*Signer{a},
			steps:  []step{{rot: c.AddKey(b.Public(), t0, t0), err: ErrUnknownKey}},
			active: []string{a.KeyID}},
		{name: "signed by a retired key", pinned: []*Signer{a, b},
			steps:  []step{{rot: a.RetireKey(b.KeyID, t0)}, {rot: b.AddKey(c.Public(), t0, t0), err: ErrRetiredKey}},
			active: []string{a.KeyID}},
		{name: "the last key is never retired", pinned: []*Signer{a},
			steps:  []step{{rot: a.RetireKey(a.KeyID, t0), err: ErrRotation}},
			active: []string{a.KeyID}},
		{name: "a retired key is never added back", pinned: []*Signer{a, b},
			steps:  []step{{rot: a.RetireKey(b.KeyID, t0)}, {rot: a.AddKey(b.Public(), t0, t0), err: ErrRotation}},
			active: []string{a.KeyID}},
		{name: "retire an unknown key", pinned: []*Signer{a},
			steps:  []step{{rot: a.RetireKey(c.KeyID, t0), err: ErrRotation}},
			active: []string{a.KeyID}},
		{name: "replayed statements change nothing", pinned: []*Signer{a},
			steps: []step{{rot: a.AddKey(b.Public(), t0, t0)}, {rot: a.AddKey(b.Public(), t0, t0)},
				{rot: b.RetireKey(a.KeyID, t0)}, {rot: b.RetireKey(a.KeyID, t0)}},
			active: []string{b.KeyID}},
		{name: "tampered statement", pinned: []*Signer{a},
			steps: []step{{rot: func() *Rotation {
				r := a.AddKey(b.Public(), t0, t0)
				r.Public, r.KeyID = c.Public(), c.KeyID
				return r
			}(), err: ErrBadSignature}},
			active: []string{a.KeyID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := trustOf(t, tt.pinned...)
			for i, s := range tt.steps {
				// Through the wire form, as a site receives it.
				r, err := DecodeRotation(s.rot.Encode())
				if err != nil {
					t.Fatalf("step %d: decode: %v", i, err)
				}
				err = ts.Apply(r, t0)
				if s.err == nil && err != nil || s.err != nil && !errors.Is(err, s.err) {
					t.Fatalf("step %d: got %v, want %v", i, err, s.err)
				}
			}
			var active []string
			for _, k := range ts.Keys() {
				if !k.Retired {
					active = append(active, k.ID)
				}
			}
			if len(active) != len(tt.active) || (len(active) > 0 && active[0] != tt.active[0]) {
				t.Errorf("active keys %v, want %v", active, tt.active)
			}
		})
	}
}

func TestDecodeRotationRefuses(t *testing.T) {
	a, b := signer(1), signer(2)
	good := a.AddKey(b.Public(), t0, t0).Encode()
	if _, err := DecodeRotation(good); err != nil {
		t.Fatal(err)
	}
	// A bundle is not a rotation, whatever its bytes (domain separation).
	bundle := issue(t, a, rendered(t, "s1", ""), 1).Encode()
	for name, data := range map[string][]byte{"bundle": bundle, "truncated": good[:len(good)-1],
		"extended": append(bytes.Clone(good), 0), "empty": nil, "huge": make([]byte, maxRotationSize+1)} {
		if _, err := DecodeRotation(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	if _, err := Decode(good); !errors.Is(err, ErrMalformed) {
		t.Errorf("rotation decoded as a bundle: %v", err)
	}
}

func TestIssueRefuses(t *testing.T) {
	if _, err := signer(1).Issue(rendered(t, "s1", ""), 0, t0); err == nil {
		t.Error("version 0 issued")
	}
}
