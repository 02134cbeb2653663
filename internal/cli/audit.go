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
// It prints the number of entries and exits 0 when the hash chain is
// intact; otherwise it names the first bad line and exits 1.
func auditCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: weir audit verify -file PATH [-key-env NAME | -key-file PATH]")
		return errUsage
	}
	fs := newFlagSet("audit verify", stderr)
	file := fs.String("file", "", "the audit trail (audit.file of the configuration) (required)")
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
	n, err := audit.VerifyKey(*file, key)
	if err != nil {
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			return fmt.Errorf("%s: %w (%d entries before it are intact)", *file, err, n)
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: %d entries, chain intact\n", *file, n)
	return nil
}
