package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/internal/conf"
)

// auditVerbs:
//
//	weir audit verify [-checkpoint FILE|-] [-pubkey KEY|FILE] [-key-env NAME | -key-file PATH] [FILE]
//	weir audit pubkey [-data-dir DIR] [KEYFILE]
//
// verify: FILE is the active file (audit.file; default
// DATA_DIR/audit/writes.jsonl); its rotated files next to it are checked
// with it as one chain. With a checkpoint (-checkpoint, or by default the
// node's second-location file DATA_DIR/audit-checkpoint/checkpoint.json)
// it also checks that the trail reaches the checkpoint's seq with the
// checkpoint's hash, and the checkpoint's signature. It prints the number
// of files and entries and exits 0 when all holds, noting when the start
// was rotated away (max_files); otherwise it says what is wrong (the
// first bad file and line, truncation, an empty trail, a rewrite, a bad
// signature) and exits 1.
func auditVerbs() []verb {
	return []verb{
		{name: "verify", args: "[flags] [FILE]", summary: "check the hash chain of the write audit trail (and its rotated files) against its signed checkpoint", define: defineAuditVerify},
		{name: "pubkey", args: "[flags] [KEYFILE]", summary: "print the public key the node signs audit checkpoints with", define: defineAuditPubkey},
	}
}

func defineAuditVerify(fs *flag.FlagSet) body {
	fileFlag := fs.String("file", "", "the audit trail (old form of the FILE argument)")
	dataDir := fs.String("data-dir", "", "without FILE: check DATA_DIR/audit/writes.jsonl (default "+config.DefaultDataDir+", or the demo's when that does not exist)")
	keyEnv := fs.String("key-env", "", "environment variable holding the HMAC key, when the trail is keyed (audit.key)")
	keyFile := fs.String("key-file", "", "file holding the HMAC key, when the trail is keyed (audit.key)")
	checkpoint := fs.String("checkpoint", "", "signed checkpoint to check the trail against: a file (one checkpoint, or lines as IT received them: audit.checkpoint events, MQTT/NATS/Kafka/HTTP sink payloads of them, syslog lines; the newest one the key signed is used) or - for stdin (default DATA_DIR/audit-checkpoint/checkpoint.json, DATA_DIR being the directory above FILE's when FILE is given)")
	pubkey := fs.String("pubkey", "", "the public key checkpoints must be signed with (ed25519:BASE64 as `weir audit pubkey` prints it, or a file holding it); default the node's generated key in DATA_DIR")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		file := *fileFlag
		dir := *dataDir
		switch {
		case len(pos) > 1 || (len(pos) == 1 && file != "" && file != pos[0]):
			fmt.Fprintln(stderr, "weir audit verify: one FILE at most")
			return errUsage
		case len(pos) == 1:
			file = pos[0]
		case file == "":
			dir = firstNonEmpty(dir, localDataDir())
			file = filepath.Join(dir, "audit", "writes.jsonl")
		}
		if dir == "" {
			// The default layout: DATA_DIR/audit/writes.jsonl.
			dir = filepath.Dir(filepath.Dir(file))
		}
		if *keyEnv != "" && *keyFile != "" {
			fmt.Fprintln(stderr, "weir audit verify: at most one of -key-env and -key-file")
			return errUsage
		}
		return verifyTrail(stdout, verifyArgs{file: file, keyEnv: *keyEnv, keyFile: *keyFile, dataDir: dir,
			checkpoint: *checkpoint, pubkey: *pubkey})
	}
}

type verifyArgs struct {
	file, keyEnv, keyFile, dataDir string
	checkpoint, pubkey             string
}

func verifyTrail(stdout io.Writer, a verifyArgs) error {
	var key []byte
	if a.keyFile != "" {
		abs, err := filepath.Abs(a.keyFile) // a secret reference is an absolute path
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		a.keyFile = abs
	}
	if secret := (conf.Secret{Env: a.keyEnv, File: a.keyFile}); secret.IsSet() {
		k, err := secret.Resolve()
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		if k == "" {
			return fmt.Errorf("key: %s is empty", secret)
		}
		key = []byte(k)
	}
	cp, notes, err := loadCheckpoint(a)
	if err != nil {
		return err
	}
	var res audit.VerifyResult
	if cp != nil {
		res, err = audit.VerifyCheckpoint(a.file, key, *cp)
	} else {
		res, err = audit.VerifyTrail(a.file, key)
	}
	if err != nil {
		var ve *audit.VerifyError
		switch {
		case key == nil && res.Entries == 0 && errors.Is(err, audit.ErrHashMismatch):
			// The very first entry fails: most likely a keyed trail.
			return fmt.Errorf("%w; if the trail is keyed (audit.key), pass the key: -key-env NAME or -key-file PATH", err)
		case errors.As(err, &ve):
			return fmt.Errorf("%w (%d entries before it are intact)", err, res.Entries)
		}
		return err
	}
	files := "files"
	if len(res.Files) == 1 {
		files = "file"
	}
	if res.Entries == 0 {
		fmt.Fprintf(stdout, "%s: 0 entries in %d %s, chain intact (empty)\n", a.file, len(res.Files), files)
	} else {
		entries := "entries"
		if res.Entries == 1 {
			entries = "entry"
		}
		fmt.Fprintf(stdout, "%s: %d %s in %d %s (seq %d..%d), chain intact; newest hash %s\n",
			a.file, res.Entries, entries, len(res.Files), files, res.FirstSeq, res.LastSeq, res.LastHash)
	}
	if cp != nil {
		fmt.Fprintf(stdout, "checkpoint: the trail reaches seq %d of node %q's checkpoint of %s with its hash; signed by %s\n",
			cp.Seq, cp.Node, cp.Time.Format("2006-01-02T15:04:05Z07:00"), cp.PubKey)
	}
	if res.RotatedAway() {
		fmt.Fprintf(stdout, "note: the chain starts at seq %d in %s: older files were rotated away (audit.max_files), so its start is not checked\n",
			res.FirstSeq, res.Files[0])
	}
	if res.CheckpointRotatedAway {
		fmt.Fprintf(stdout, "note: the checkpoint's seq %d was rotated away, so its hash could not be compared; use a newer checkpoint\n", cp.Seq)
	}
	for _, n := range notes {
		fmt.Fprintln(stdout, "note: "+n)
	}
	return nil
}

// loadCheckpoint reads the checkpoint to verify against and checks its
// signature; nil without one (only when none was asked for and the
// default file does not exist).
func loadCheckpoint(a verifyArgs) (*audit.Checkpoint, []string, error) {
	path := a.checkpoint
	explicit := path != ""
	if !explicit {
		path = audit.CheckpointPath(a.dataDir)
	}
	var list []audit.Checkpoint
	var err error
	if path == "-" {
		list, err = audit.ReadCheckpointList(os.Stdin)
		if err != nil {
			err = fmt.Errorf("checkpoint (stdin): %w", err)
		}
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			list, err = audit.ReadCheckpointList(f)
			f.Close()
			if err != nil {
				err = fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	switch {
	case !explicit && errors.Is(err, fs.ErrNotExist):
		return nil, []string{"no checkpoint (" + path + "): lines cut off the end of the trail, an emptied trail or a rewrite cannot be detected; pass -checkpoint with one IT holds"}, nil
	case err != nil:
		return nil, nil, fmt.Errorf("checkpoint: %w", err)
	}
	var notes []string
	var pub ed25519.PublicKey
	switch local := filepath.Join(a.dataDir, audit.GeneratedKeyName); {
	case a.pubkey != "":
		text := a.pubkey
		if data, err := os.ReadFile(a.pubkey); err == nil {
			text = string(data)
		} else if !strings.HasPrefix(a.pubkey, "ed25519:") && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("pubkey: %w", err)
		}
		if pub, err = audit.ParsePublicKey(text); err != nil {
			return nil, nil, err
		}
	default:
		if data, err := os.ReadFile(local); err == nil {
			k, err := audit.ParsePrivateKey(string(data))
			if err != nil {
				return nil, nil, fmt.Errorf("signing key %s: %w", local, err)
			}
			pub = k.Public().(ed25519.PublicKey)
			notes = append(notes, "signature checked against the node's own key ("+local+"); someone with file access may have replaced both: pass -pubkey with the key IT holds")
		} else {
			// The newest checkpoint names the key: the weakest check.
			if pub, err = audit.ParsePublicKey(list[0].PubKey); err != nil {
				return nil, nil, fmt.Errorf("checkpoint: %w", err)
			}
			notes = append(notes, "the signature was checked only against the key the newest checkpoint names ("+list[0].PubKey+"); pass -pubkey with the key IT holds")
		}
	}
	// Lines of other nodes, or forged ones, do not stand in the way of
	// the newest checkpoint this key signed.
	cp, skipped, err := audit.NewestVerified(list, pub)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint %s: %w", firstNonEmpty(strings.TrimPrefix(path, "-"), "(stdin)"), err)
	}
	if skipped > 0 {
		notes = append(notes, fmt.Sprintf("%d newer checkpoint(s) skipped: not signed by %s (another node's, or forged)", skipped, audit.PublicKeyText(pub)))
	}
	return &cp, notes, nil
}

func defineAuditPubkey(flags *flag.FlagSet) body {
	dataDir := flags.String("data-dir", "", "without KEYFILE: the key the gateway generated in DATA_DIR (default "+config.DefaultDataDir+", or the demo's when that does not exist)")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 1 {
			fmt.Fprintln(stderr, "weir audit pubkey: one KEYFILE at most")
			return errUsage
		}
		path := filepath.Join(firstNonEmpty(*dataDir, localDataDir()), audit.GeneratedKeyName)
		if len(pos) == 1 {
			path = pos[0]
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no signing key at %s: the gateway generates one on first start unless audit.signing_key names one (then pass its file)", path)
		}
		if err != nil {
			return err
		}
		k, err := audit.ParsePrivateKey(string(data))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintln(stdout, audit.PublicKeyText(k.Public().(ed25519.PublicKey)))
		return nil
	}
}
