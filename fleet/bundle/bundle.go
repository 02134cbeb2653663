package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/weir-edge/weir/config"
)

// Bundle is one site's signed desired configuration.
type Bundle struct {
	Site string
	// Version is monotonic per site: a site applies only a version newer
	// than the one it holds.
	Version uint64
	// Hash is the SHA-256 of Config.
	Hash [32]byte
	// Config is the rendered canonical configuration, with fleet secret
	// references (never a secret in clear).
	Config []byte
	// IssuedAt is when the hub signed it (UTC, nanoseconds).
	IssuedAt time.Time
	// KeyID names the hub key that signed it (KeyID of its public key).
	KeyID     string
	Signature []byte
}

// Limits on a bundle as the site decodes it (outside input).
const (
	// MaxBundleSize bounds an encoded bundle.
	MaxBundleSize = 4 << 20
	// MaxConfigSize bounds its configuration: what config accepts.
	MaxConfigSize = config.MaxFileSize
)

// bundleDomain separates bundle signatures from every other use of the
// hub's keys (a rotation statement cannot be passed off as a bundle).
const bundleDomain = "weir-bundle-v1\n"

// SignedBytes is the canonical encoding the signature covers:
//
//	"weir-bundle-v1\n"
//	u32 len(site)   site
//	u64 version
//	[32]byte hash
//	i64 issued_at (Unix nanoseconds)
//	u32 len(key_id) key_id
//	u32 len(config) config
//
// integers big-endian; every variable field length-prefixed, so no two
// bundles share an encoding.
func (b *Bundle) SignedBytes() []byte {
	var w bytes.Buffer
	w.Grow(len(bundleDomain) + 64 + len(b.Site) + len(b.KeyID) + len(b.Config))
	w.WriteString(bundleDomain)
	putBytes(&w, []byte(b.Site))
	putU64(&w, b.Version)
	w.Write(b.Hash[:])
	putU64(&w, uint64(b.IssuedAt.UnixNano()))
	putBytes(&w, []byte(b.KeyID))
	putBytes(&w, b.Config)
	return w.Bytes()
}

func putU64(w *bytes.Buffer, v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	w.Write(b[:])
}

func putBytes(w *bytes.Buffer, p []byte) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(len(p)))
	w.Write(b[:])
	w.Write(p)
}

// Signer is the hub's side of a signing key.
type Signer struct {
	KeyID   string
	private ed25519.PrivateKey
}

// NewSigner returns a Signer for an ed25519 private key.
func NewSigner(private ed25519.PrivateKey) *Signer {
	return &Signer{KeyID: KeyID(private.Public().(ed25519.PublicKey)), private: private}
}

// Public returns the signer's public key (to pin on sites).
func (s *Signer) Public() ed25519.PublicKey { return s.private.Public().(ed25519.PublicKey) }

// Issue signs r as version of its site, issued at now.
func (s *Signer) Issue(r *Rendered, version uint64, now time.Time) (*Bundle, error) {
	if version == 0 {
		return nil, fmt.Errorf("bundle for site %q: version must be at least 1", r.Site)
	}
	if len(r.Config) > MaxConfigSize {
		return nil, fmt.Errorf("bundle for site %q: configuration larger than %d KiB", r.Site, MaxConfigSize>>10)
	}
	b := &Bundle{Site: r.Site, Version: version, Hash: sha256.Sum256(r.Config), Config: r.Config,
		IssuedAt: time.Unix(0, now.UnixNano()).UTC(), KeyID: s.KeyID}
	b.Signature = ed25519.Sign(s.private, b.SignedBytes())
	return b, nil
}

// wireBundle is a bundle on the wire and on the site's disk: JSON, the
// configuration in base64, the hash in hex.
type wireBundle struct {
	Site      string `json:"site"`
	Version   uint64 `json:"version"`
	Hash      string `json:"hash"`
	IssuedAt  string `json:"issued_at"`
	KeyID     string `json:"key_id"`
	Config    []byte `json:"config"`
	Signature []byte `json:"signature"`
}

// Encode returns the bundle's wire form.
func (b *Bundle) Encode() ([]byte, error) {
	return json.Marshal(wireBundle{Site: b.Site, Version: b.Version, Hash: hex.EncodeToString(b.Hash[:]),
		IssuedAt: b.IssuedAt.UTC().Format(time.RFC3339Nano), KeyID: b.KeyID, Config: b.Config, Signature: b.Signature})
}

var keyIDPattern = regexp.MustCompile(`^ed25519:[0-9a-f]{16}$`)

// Decode parses a bundle's wire form, strictly and within MaxBundleSize.
// It checks shapes only: Verify (TrustStore) checks the signature.
func Decode(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("bundle: %w: larger than %d MiB", ErrMalformed, MaxBundleSize>>20)
	}
	var w wireBundle
	if err := strictJSON(data, &w); err != nil {
		return nil, fmt.Errorf("bundle: %w: %w", ErrMalformed, err)
	}
	b := &Bundle{Site: w.Site, Version: w.Version, Config: w.Config, KeyID: w.KeyID, Signature: w.Signature}
	switch {
	case !ValidID(w.Site):
		return nil, fmt.Errorf("bundle: %w: site id is not 1 to 64 letters, digits, '.', '_' or '-'", ErrMalformed)
	case w.Version == 0:
		return nil, fmt.Errorf("bundle for site %s: %w: version 0", w.Site, ErrMalformed)
	case !keyIDPattern.MatchString(w.KeyID):
		return nil, fmt.Errorf("bundle for site %s: %w: key_id is not ed25519:<16 hex digits>", w.Site, ErrMalformed)
	case len(w.Signature) != ed25519.SignatureSize:
		return nil, fmt.Errorf("bundle for site %s: %w: signature is not %d bytes", w.Site, ErrMalformed, ed25519.SignatureSize)
	case len(w.Config) > MaxConfigSize:
		return nil, fmt.Errorf("bundle for site %s: %w: configuration larger than %d KiB", w.Site, ErrMalformed, MaxConfigSize>>10)
	}
	h, err := hex.DecodeString(w.Hash)
	if err != nil || len(h) != len(b.Hash) {
		return nil, fmt.Errorf("bundle for site %s: %w: hash is not 64 hex digits", w.Site, ErrMalformed)
	}
	copy(b.Hash[:], h)
	if b.IssuedAt, err = parseTime(w.IssuedAt); err != nil {
		return nil, fmt.Errorf("bundle for site %s: %w: issued_at: %w", w.Site, ErrMalformed, err)
	}
	return b, nil
}

// parseTime reads an RFC 3339 time the signed encoding can hold (Unix
// nanoseconds in an int64: years 1678 to 2262).
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an RFC 3339 time")
	}
	if t.Year() < 1700 || t.Year() > 2200 {
		return time.Time{}, fmt.Errorf("year %d out of range", t.Year())
	}
	return time.Unix(0, t.UnixNano()).UTC(), nil
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

// KeyID names an ed25519 public key: "ed25519:" and the first 8 bytes of
// its SHA-256 in hex. Derived, so a statement cannot pair an id with
// another key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

func sha256Sum(p []byte) [32]byte { return sha256.Sum256(p) }
