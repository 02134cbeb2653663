package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
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
	w.Grow(len(bundleDomain) + 128 + len(b.Site) + len(b.KeyID) + len(b.Config))
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

// Encode returns the bundle's wire form, also its form on the site's
// disk: SignedBytes followed by the 64-byte signature. Binary and
// canonical, so that a change to any byte is refused (a JSON form would
// let keys change case, hex change case, a time change zone, and still
// decode to the same bundle).
func (b *Bundle) Encode() []byte {
	return append(b.SignedBytes(), b.Signature...)
}

var keyIDPattern = regexp.MustCompile(`^ed25519:[0-9a-f]{16}$`)

// Decode parses a bundle's wire form, within MaxBundleSize, every length
// checked against its bound before use. It checks shapes only: Verify
// (TrustStore) checks the signature and the hash.
func Decode(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("bundle: %w: larger than %d MiB", ErrMalformed, MaxBundleSize>>20)
	}
	r := wireReader{data: data}
	if !r.prefix(bundleDomain) {
		return nil, fmt.Errorf("bundle: %w: not a weir-bundle-v1", ErrMalformed)
	}
	b := &Bundle{}
	b.Site = string(r.bytes("site", 64))
	b.Version = r.u64()
	copy(b.Hash[:], r.fixed(len(b.Hash)))
	b.IssuedAt = time.Unix(0, int64(r.u64())).UTC()
	b.KeyID = string(r.bytes("key id", 64))
	b.Config = r.bytes("configuration", MaxConfigSize)
	b.Signature = r.fixed(ed25519.SignatureSize)
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("bundle: %w: %w", ErrMalformed, err)
	}
	switch {
	case !ValidID(b.Site):
		return nil, fmt.Errorf("bundle: %w: site id is not 1 to 64 letters, digits, '.', '_' or '-'", ErrMalformed)
	case b.Version == 0:
		return nil, fmt.Errorf("bundle for site %s: %w: version 0", b.Site, ErrMalformed)
	case !keyIDPattern.MatchString(b.KeyID):
		return nil, fmt.Errorf("bundle for site %s: %w: key id is not ed25519:<16 hex digits>", b.Site, ErrMalformed)
	}
	return b, nil
}

// wireReader reads length-prefixed fields; the first problem sticks.
type wireReader struct {
	data []byte
	err  error
}

func (r *wireReader) prefix(p string) bool {
	if !bytes.HasPrefix(r.data, []byte(p)) {
		return false
	}
	r.data = r.data[len(p):]
	return true
}

func (r *wireReader) fixed(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.data) < n {
		r.err = fmt.Errorf("truncated")
		return nil
	}
	p := r.data[:n:n]
	r.data = r.data[n:]
	return p
}

func (r *wireReader) u64() uint64 {
	if p := r.fixed(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// bytes reads a u32 length and that many bytes, refusing more than max.
func (r *wireReader) bytes(what string, max int) []byte {
	p := r.fixed(4)
	if p == nil {
		return nil
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(max) {
		r.err = fmt.Errorf("%s longer than %d bytes", what, max)
		return nil
	}
	return r.fixed(int(n))
}

func (r *wireReader) end() error {
	if r.err == nil && len(r.data) > 0 {
		r.err = fmt.Errorf("%d bytes after the end", len(r.data))
	}
	return r.err
}

// KeyID names an ed25519 public key: "ed25519:" and the first 8 bytes of
// its SHA-256 in hex. Derived, so a statement cannot pair an id with
// another key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

func sha256Sum(p []byte) [32]byte { return sha256.Sum256(p) }
