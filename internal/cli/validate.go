package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/weir-edge/weir/config"
)

func validateCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	path := fs.String("c", "", "configuration file to check (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "weir validate: -c FILE is required")
		return errUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintln(stderr, ps.Error())
			return fmt.Errorf("%d problem(s) in %s", len(ps), *path)
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%s)\n", *path, cfg)
	return nil
}
