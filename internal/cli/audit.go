package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/conf"
)

// auditCmd checks the audit trail of writes to OT:
//
//	weir audit verify -file PATH [-key-env NAME | -key-file PATH]
//
// PATH is the active file (audit.file); its rotated files next to it are
// checked with it as one chain. It prints the number of files and entries
// and exits 0 when the chain is intact, noting when its start was rotated
// away (max_files); otherwise it names the first bad file and line and
// exits 1.
func auditCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: weir audit verify -file PATH [-key-env NAME | -key-file PATH]")
		return errUsage
	}
	fs := newFlagSet("audit verify", stderr)
	file := fs.String("file", "", "the audit trail (audit.file of the configuration), checked with its rotated files (required)")
	keyEnv := fs.String("key-env", "", "environment variable holding the HMAC key, when the trail is keyed (audit.key)")
	keyFile := fs.String("key-file", "", "file holding the HMAC key, when the trail is keyed (audit.key)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *file == "" || fs.NArg() > 0 || (*keyEnv != "" && *keyFile != "") {
		fmt.Fprintln(stderr, "weir audit verify: -file PATH is required, with at most one of -key-env and -key-file")
		return errUsage
	}
	var key []byte
	if secret := (conf.Secret{Env: *keyEnv, File: *keyFile}); secret.IsSet() {
		k, err := secret.Resolve()
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		key = []byte(k)
	}
	res, err := audit.VerifyTrail(*file, key)
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
		fmt.Fprintf(stdout, "%s: 0 entries in %d %s, chain intact (empty)\n", *file, len(res.Files), files)
		return nil
	}
	fmt.Fprintf(stdout, "%s: %d entries in %d %s (seq %d..%d), chain intact; newest hash %s\n",
		*file, res.Entries, len(res.Files), files, res.FirstSeq, res.LastSeq, res.LastHash)
	if res.RotatedAway() {
		fmt.Fprintf(stdout, "note: the chain starts at seq %d in %s: older files were rotated away (audit.max_files), so its start is not checked\n",
			res.FirstSeq, res.Files[0])
	}
	return nil
}
