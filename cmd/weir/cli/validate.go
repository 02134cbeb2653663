package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/weir-edge/weir/config"
)

// validateAbout says what validate checks, under its usage line in -h.
const validateAbout = `Checks configuration files and reports every problem of each at once, as
file:line: key: message. Unless -offline, it also reads what the file names
on this machine: ${NAME} variables, secrets ({env: NAME}: set and not empty;
{file: PATH}: readable and not empty; a warning when other users may read
it) and TLS files (readable, PEM, key matching the certificate, certificate
not expired; a warning when it expires within 30 days).

Insecure transport is checked offline too: credentials (a password, SASL,
a token, an auth header) sent in plaintext to another machine are an error
unless the block says allow_insecure: true, which makes it a warning that
the gateway repeats at every start; insecure_skip_verify and a PostgreSQL
sslmode below verify-full are warnings. Loopback peers are exempt.

Each valid file is followed by its data flows: the classification, and per
sink its max_class, its route, the classes of the known tags (sources'
tags and derived tags) it will receive and those its class holds back;
a route whose include patterns can select tags above the sink's class is
a warning.

Exit status: 0 when every file is valid (warnings are printed), 1 on any
error, 2 on a usage error. -c FILE is accepted too, and may be repeated.`

// fileList is a repeatable -c flag.
type fileList []string

func (l *fileList) String() string     { return strings.Join(*l, ",") }
func (l *fileList) Set(v string) error { *l = append(*l, v); return nil }

func validateCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	var files fileList
	fs.Var(&files, "c", "configuration `FILE` to check (same as a positional FILE)")
	offline := fs.Bool("offline", false, "check a file written for another machine: do not read its secrets,\n"+
		"files or ${NAME} variables (an unset one is not an error)")
	fs.Usage = func() {
		c, _ := lookup("validate")
		commandHelp(fs.Output(), c, nil)
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	files = append(files, positional...)
	if len(files) == 0 {
		fmt.Fprintln(stderr, "weir validate: a FILE is required")
		fs.Usage()
		return errUsage
	}
	var failed []string
	for _, f := range files {
		if err := validateFile(f, config.Options{Offline: *offline}, stdout, stderr); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, ", "))
	}
	return nil
}

// validateFile prints the problems of one file (stderr) or its summary
// (stdout); the error counts what makes it invalid (warnings do not).
func validateFile(path string, opts config.Options, stdout, stderr io.Writer) error {
	cfg, ps, err := config.InspectFile(path, opts)
	if err != nil {
		return err
	}
	if len(ps) > 0 {
		fmt.Fprintln(stderr, ps.Error())
	}
	if cfg == nil {
		n := ps.Errors()
		return fmt.Errorf("%d error%s in %s", n, plural(n), path)
	}
	note := ""
	if w := len(ps); w > 0 {
		note = fmt.Sprintf(", %d warning%s", w, plural(w))
	}
	if opts.Offline {
		note += "; offline: secrets, files and ${NAME} variables not checked"
	}
	fmt.Fprintf(stdout, "%s: ok (%s)%s\n", path, cfg, note)
	writeDataFlows(stdout, config.FlowReport(cfg))
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// parseInterspersed parses flags placed before, between or after the
// positional arguments (weir validate a.yaml -offline b.yaml), which the
// flag package alone stops at; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		consumed := len(args) - fs.NArg()
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, fs.Args()...), nil
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return positional, nil
}
