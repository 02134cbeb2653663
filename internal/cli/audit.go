package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/internal/conf"
)

// auditVerbs: weir audit verify [-key-env NAME | -key-file PATH] [FILE]
//
// FILE is the active file (audit.file; default DATA_DIR/audit/writes.jsonl);
// its rotated files next to it are checked with it as one chain. It prints
// the number of files and entries and exits 0 when the chain is intact,
// noting when its start was rotated away (max_files); otherwise it names
// the first bad file and line and exits 1.
func auditVerbs() []verb {
	return []verb{{name: "verify", args: "[flags] [FILE]", summary: "check the hash chain of the write audit trail (and its rotated files)", define: defineAuditVerify}}
}

func defineAuditVerify(fs *flag.FlagSet) body {
	fileFlag := fs.String("file", "", "the audit trail (old form of the FILE argument)")
	dataDir := fs.String("data-dir", "", "without FILE: check DATA_DIR/audit/writes.jsonl (default "+config.DefaultDataDir+", or the demo's when that does not exist)")
	keyEnv := fs.String("key-env", "", "environment variable holding the HMAC key, when the trail is keyed (audit.key)")
	keyFile := fs.String("key-file", "", "file holding the HMAC key, when the trail is keyed (audit.key)")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		file := *fileFlag
		switch {
		case len(pos) > 1 || (len(pos) == 1 && file != "" && file != pos[0]):
			fmt.Fprintln(stderr, "weir audit verify: one FILE at most")
			return errUsage
		case len(pos) == 1:
			file = pos[0]
		case file == "":
			file = filepath.Join(firstNonEmpty(*dataDir, localDataDir()), "audit", "writes.jsonl")
		}
		if *keyEnv != "" && *keyFile != "" {
			fmt.Fprintln(stderr, "weir audit verify: at most one of -key-env and -key-file")
			return errUsage
		}
		return verifyTrail(stdout, file, *keyEnv, *keyFile)
	}
}

func verifyTrail(stdout io.Writer, file, keyEnv, keyFile string) error {
	var key []byte
	if keyFile != "" {
		abs, err := filepath.Abs(keyFile) // a secret reference is an absolute path
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		keyFile = abs
	}
	if secret := (conf.Secret{Env: keyEnv, File: keyFile}); secret.IsSet() {
		k, err := secret.Resolve()
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		key = []byte(k)
	}
	res, err := audit.VerifyTrail(file, key)
	if err != nil {
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			return fmt.Errorf("%w (%d entries before it are intact)", err, res.Entries)
		}
		return err
	}
	files := "files"
	if len(res.Files) == 1 {
		files = "file"
	}
	if res.Entries == 0 {
		fmt.Fprintf(stdout, "%s: 0 entries in %d %s, chain intact (empty)\n", file, len(res.Files), files)
		return nil
	}
	entries := "entries"
	if res.Entries == 1 {
		entries = "entry"
	}
	fmt.Fprintf(stdout, "%s: %d %s in %d %s (seq %d..%d), chain intact; newest hash %s\n",
		file, res.Entries, entries, len(res.Files), files, res.FirstSeq, res.LastSeq, res.LastHash)
	if res.RotatedAway() {
		fmt.Fprintf(stdout, "note: the chain starts at seq %d in %s: older files were rotated away (audit.max_files), so its start is not checked\n",
			res.FirstSeq, res.Files[0])
	}
	return nil
}
