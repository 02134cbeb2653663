package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
)

// A checkpoint is the head of the trail (its newest seq and hash) at one
// moment, signed with the node's ed25519 key. The trail's own chain shows
// an edit, but not lines cut off its end, an emptied file, or (without
// the HMAC key) a whole file rewritten: only a copy of the head kept
// elsewhere does. So the Log writes every checkpoint to a second location
// (checkpoint_file, ideally another disk) and publishes it as a
// security.AuditCheckpoint event, which the SOC stream forwards to the
// sinks and syslog: IT holds checkpoints the box cannot take back.
// `weir audit verify -checkpoint` then checks the trail still reaches the
// checkpoint's seq with the checkpoint's hash.

// Checkpoint is a signed head of the trail. Its JSON form (JSON) is what
// the checkpoint file holds and the event's Detail carries.
type Checkpoint struct {
	Node string    `json:"node"`
	Seq  uint64    `json:"seq"`  // of the newest entry covered; 0 for an empty trail
	Hash string    `json:"hash"` // of that entry; Genesis for an empty trail
	Time time.Time `json:"time"` // when the checkpoint was taken (UTC)
	// PubKey names the key that signed (PublicKeyText form). It only
	// identifies the key: trust comes from the key given to the verifier.
	PubKey string `json:"pubkey"`
	Sig    string `json:"sig"` // base64 ed25519 signature of message()
}

// message is the signed text: fixed fields in a fixed order, the node
// quoted, so two checkpoints never share one.
func (c *Checkpoint) message() []byte {
	return fmt.Appendf(nil, "weir audit checkpoint v1\nnode=%s\nseq=%d\nhash=%s\ntime=%s\n",
		strconv.Quote(c.Node), c.Seq, c.Hash, c.Time.UTC().Format(time.RFC3339Nano))
}

// Sign sets PubKey and Sig.
func (c *Checkpoint) Sign(key ed25519.PrivateKey) {
	c.Time = c.Time.UTC()
	c.PubKey = PublicKeyText(key.Public().(ed25519.PublicKey))
	c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.message()))
}

// Verify checks the signature against pub.
func (c *Checkpoint) Verify(pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: the signature is not base64 of %d bytes", ErrBadSignature, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, c.message(), sig) {
		if c.PubKey != PublicKeyText(pub) {
			return fmt.Errorf("%w: signed by %s, not by the key given (%s)", ErrBadSignature, c.PubKey, PublicKeyText(pub))
		}
		return fmt.Errorf("%w: the checkpoint was changed after it was signed", ErrBadSignature)
	}
	return nil
}

// JSON is the compact JSON form.
func (c Checkpoint) JSON() []byte {
	b, _ := json.Marshal(c) // plain fields: cannot fail
	return b
}

// maxCheckpointFile bounds what is read as checkpoints: a file of them
// (published events kept by IT, one a line) may be long, but not a disk.
const maxCheckpointFile = 64 << 20

// ParseCheckpoint decodes one checkpoint strictly.
func ParseCheckpoint(data []byte) (Checkpoint, error) {
	var c Checkpoint
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Checkpoint{}, fmt.Errorf("not a checkpoint: %w", err)
	}
	if dec.More() {
		return Checkpoint{}, errors.New("not a checkpoint: data after it")
	}
	switch {
	case !isHash(c.Hash):
		return Checkpoint{}, errors.New("checkpoint hash is not 64 lowercase hex digits")
	case c.Seq == 0 && c.Hash != Genesis:
		return Checkpoint{}, errors.New("checkpoint of seq 0 must have the Genesis hash")
	case c.Sig == "" || c.PubKey == "":
		return Checkpoint{}, errors.New("checkpoint is not signed")
	}
	c.Time = c.Time.UTC()
	return c, nil
}

// ReadCheckpointFile reads a checkpoint file (ReadCheckpoints).
func ReadCheckpointFile(path string) (Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return Checkpoint{}, err
	}
	defer f.Close()
	c, err := ReadCheckpoints(f)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, synced, renamed over path, and the directory synced, so a
// crash leaves the old file or the new one, never half of either. The
// file is 0600 and a created directory 0700.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// PublicKeyText is how a public key is shown and given to the verifier:
// "ed25519:" and the base64 of its 32 bytes.
func PublicKeyText(pub ed25519.PublicKey) string {
	return "ed25519:" + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a public key as PublicKeyText writes it, bare
// base64, or a PEM "PUBLIC KEY" block.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if block, _ := pem.Decode([]byte(s)); block != nil {
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key: a %T, not ed25519", k)
		}
		return pub, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "ed25519:"))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New(`public key: want "ed25519:" and the base64 of 32 bytes, or a PEM PUBLIC KEY`)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePrivateKey reads a signing key: a PEM "PRIVATE KEY" (PKCS #8)
// block, or the base64 of the 32-byte seed. Errors never quote it.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	if block, _ := pem.Decode([]byte(s)); block != nil {
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a PKCS #8 private key")
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T key, not ed25519", k)
		}
		return priv, nil
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("want a PEM PRIVATE KEY (PKCS #8, ed25519) or the base64 of a 32-byte seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// GeneratedKeyName is the file, in the data directory, of the signing key
// generated when audit.signing_key is not set.
const GeneratedKeyName = "audit-signing-key.pem"

// LoadSigningKey returns the configured key (secret set), or the one in
// generated, created there (0600) when missing; created reports that.
func LoadSigningKey(secret conf.Secret, generated string) (key ed25519.PrivateKey, created bool, err error) {
	if secret.IsSet() {
		s, err := secret.Resolve()
		if err != nil {
			return nil, false, fmt.Errorf("signing_key: %w", err)
		}
		if s == "" {
			return nil, false, fmt.Errorf("signing_key: %s resolves to an empty value", secret)
		}
		k, err := ParsePrivateKey(s)
		if err != nil {
			return nil, false, fmt.Errorf("signing_key %s: %w", secret, err)
		}
		return k, false, nil
	}
	if generated == "" {
		return nil, false, errors.New("signing_key: not set, and no data directory to keep a generated one in")
	}
	data, err := os.ReadFile(generated)
	if err == nil {
		k, err := ParsePrivateKey(string(data))
		if err != nil {
			return nil, false, fmt.Errorf("signing key %s: %w", generated, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	if err := writeFileAtomic(generated, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	return priv, true, nil
}

// CheckpointPath is the default checkpoint file of a node whose data
// directory is dataDir.
func CheckpointPath(dataDir string) string {
	return filepath.Join(dataDir, "audit-checkpoint", "checkpoint.json")
}
