package hub

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/weir-edge/weir/fleet/bundle"
)

// Key files under DATA_DIR/keys, all 0600 (the directory 0700). They are
// the hub's identity: replicas of one hub share them (copy the directory);
// nothing else in the data dir is needed by a replica that uses an
// external NATS.
const (
	keysDir         = "keys"
	operatorSeed    = "operator.nk"
	accountSeed     = "account.nk"
	accountSigning  = "account-signing.nk"
	systemSeed      = "system.nk"
	signingKeyFile  = "bundle-signing.key" // hex ed25519 seed of the key that signs bundles now
	genesisKeyFile  = "bundle-genesis.pub" // hex ed25519 public key sites pin first
	operatorJWTFile = "operator.jwt"       // for an external nats-server
	resolverConf    = "nats-resolver.conf" // include file for an external nats-server
	enrollCredsFile = "enroll.creds"       // the enrolment user, given to installers
)

// keyring is the hub's key material, loaded (or created once) from
// DATA_DIR/keys.
type keyring struct {
	dir        string
	operator   nkeys.KeyPair
	account    nkeys.KeyPair
	signing    nkeys.KeyPair // the account signing key: issues user JWTs
	system     nkeys.KeyPair
	accountPub string
	systemPub  string
	// operatorJWT, accountJWT, systemJWT are issued at every load (same
	// keys, same claims): a server needs nothing else to trust the hub.
	operatorClaims *jwt.OperatorClaims
	operatorJWT    string
	accountJWT     string
	systemJWT      string
}

// loadKeys reads the hub's keys from dir/keys, creating the missing ones
// (first start). create=false refuses a missing key instead: a replica
// or a CLI command must not invent a second identity.
func loadKeys(dataDir string, create bool) (*keyring, error) {
	dir := filepath.Join(dataDir, keysDir)
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("hub keys: %w", err)
		}
	}
	k := &keyring{dir: dir}
	var err error
	if k.operator, err = loadNKey(dir, operatorSeed, nkeys.PrefixByteOperator, create); err != nil {
		return nil, err
	}
	if k.account, err = loadNKey(dir, accountSeed, nkeys.PrefixByteAccount, create); err != nil {
		return nil, err
	}
	if k.signing, err = loadNKey(dir, accountSigning, nkeys.PrefixByteAccount, create); err != nil {
		return nil, err
	}
	if k.system, err = loadNKey(dir, systemSeed, nkeys.PrefixByteAccount, create); err != nil {
		return nil, err
	}
	if _, err := loadSigningKey(dataDir, create); err != nil {
		return nil, err
	}
	if err := k.issueAccounts(); err != nil {
		return nil, err
	}
	if create {
		if err := k.writeServerFiles(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func loadNKey(dir, name string, prefix nkeys.PrefixByte, create bool) (nkeys.KeyPair, error) {
	path := filepath.Join(dir, name)
	seed, err := os.ReadFile(path)
	switch {
	case err == nil:
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
		if err != nil {
			return nil, fmt.Errorf("hub key %s: not an nkey seed: %w", path, err)
		}
		return kp, nil
	case errors.Is(err, fs.ErrNotExist) && create:
		kp, err := nkeys.CreatePair(prefix)
		if err != nil {
			return nil, err
		}
		seed, _ := kp.Seed()
		if err := writeNew(path, append(seed, '\n')); err != nil {
			return nil, err
		}
		return kp, nil
	default:
		return nil, fmt.Errorf("hub key %s: %w (is the data dir a hub's? run `weir hub run` once to create it)", path, err)
	}
}

// writeNew creates path 0600, never overwriting: two hubs starting on one
// fresh data dir cannot end up with different keys on disk.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("hub key %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("hub key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("hub key %s: %w", path, err)
	}
	return f.Close()
}

// writeReplace writes path 0600 through a temporary file and a rename.
func writeReplace(path string, data []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := writeNew(tmp, data); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (k *keyring) issueAccounts() error {
	opPub, _ := k.operator.PublicKey()
	k.accountPub, _ = k.account.PublicKey()
	k.systemPub, _ = k.system.PublicKey()

	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "weir-hub"
	oc.SystemAccount = k.systemPub
	var err error
	if k.operatorJWT, err = oc.Encode(k.operator); err != nil {
		return fmt.Errorf("hub operator jwt: %w", err)
	}
	if k.operatorClaims, err = jwt.DecodeOperatorClaims(k.operatorJWT); err != nil {
		return fmt.Errorf("hub operator jwt: %w", err)
	}

	if k.accountJWT, _, err = k.accountClaims(nil); err != nil {
		return err
	}
	sc := jwt.NewAccountClaims(k.systemPub)
	sc.Name = "SYS"
	if k.systemJWT, err = sc.Encode(k.operator); err != nil {
		return fmt.Errorf("hub system account jwt: %w", err)
	}
	return nil
}

// accountClaims issues the hub account's JWT: its signing key, JetStream
// without account limits (streams carry their own), and the revoked site
// credentials (user nkey → JWTs issued up to that time are refused).
func (k *keyring) accountClaims(revoked map[string]time.Time) (string, *jwt.AccountClaims, error) {
	signPub, _ := k.signing.PublicKey()
	ac := jwt.NewAccountClaims(k.accountPub)
	ac.Name = "weir"
	ac.SigningKeys.Add(signPub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1,
		MaxAckPending: -1, MemoryMaxStreamBytes: -1, DiskMaxStreamBytes: -1}
	for nkey, at := range revoked {
		ac.RevokeAt(nkey, at)
	}
	tok, err := ac.Encode(k.operator)
	if err != nil {
		return "", nil, fmt.Errorf("hub account jwt: %w", err)
	}
	return tok, ac, nil
}

// writeServerFiles leaves what an external nats-server needs to trust the
// hub's account (include nats-resolver.conf from its configuration).
func (k *keyring) writeServerFiles() error {
	if err := writeReplace(filepath.Join(k.dir, operatorJWTFile), []byte(k.operatorJWT+"\n")); err != nil {
		return err
	}
	conf := fmt.Sprintf("# written by weir hub: include from nats-server.conf to trust the hub's account\n"+
		"operator: %q\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n  %s: %q\n  %s: %q\n}\n"+
		"# a bundle may pass the 1 MB default (configurations up to 1 MiB, bundles up to 4 MiB)\nmax_payload: 8MB\n",
		filepath.Join(k.dir, operatorJWTFile), k.systemPub, k.accountPub, k.accountJWT, k.systemPub, k.systemJWT)
	return writeReplace(filepath.Join(k.dir, resolverConf), []byte(conf))
}

// userCreds issues a user JWT of the hub's account with perms, signed by
// the account signing key, for the holder of userPub.
func (k *keyring) userJWT(name, userPub string, perms jwt.Permissions) (string, error) {
	uc := jwt.NewUserClaims(userPub)
	uc.Name = name
	uc.IssuerAccount = k.accountPub
	uc.Permissions = perms
	return uc.Encode(k.signing)
}

// newUserCreds makes a fresh user nkey and its creds file bytes.
func (k *keyring) newUserCreds(name string, perms jwt.Permissions) ([]byte, error) {
	u, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	pub, _ := u.PublicKey()
	tok, err := k.userJWT(name, pub, perms)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	seed, _ := u.Seed()
	return jwt.FormatUserConfig(tok, seed)
}

// loadSigner returns the bundle signer: the key in keys/bundle-signing.key,
// created with the genesis public key on first start.
func loadSigner(dataDir string, create bool) (*bundle.Signer, error) {
	k, err := loadSigningKey(dataDir, create)
	if err != nil {
		return nil, err
	}
	return bundle.NewSigner(k), nil
}

// loadSigningKey is loadSigner's private key.
func loadSigningKey(dataDir string, create bool) (ed25519.PrivateKey, error) {
	dir := filepath.Join(dataDir, keysDir)
	path := filepath.Join(dir, signingKeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		if err := writeNew(path, []byte(hex.EncodeToString(priv.Seed())+"\n")); err != nil {
			return nil, err
		}
		pub := priv.Public().(ed25519.PublicKey)
		if err := writeNew(filepath.Join(dir, genesisKeyFile), []byte(hex.EncodeToString(pub)+"\n")); err != nil {
			return nil, err
		}
		return priv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hub signing key %s: %w", path, err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("hub signing key %s: not a hex ed25519 seed", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// genesisKey is the first bundle key: what a site pins at enrolment,
// before it applies the rotations in order.
func genesisKey(dataDir string) (ed25519.PublicKey, error) {
	path := filepath.Join(dataDir, keysDir, genesisKeyFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hub genesis key: %w", err)
	}
	pub, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("hub genesis key %s: not a hex ed25519 public key", path)
	}
	return pub, nil
}
