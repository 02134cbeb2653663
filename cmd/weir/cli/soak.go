package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/soak"
)

// errSoakFailed makes weir soak exit non-zero once the report is out.
var errSoakFailed = errors.New("accepted samples were lost or reordered")

// defineSoak adds soak's flags; it takes no arguments.
func defineSoak(fs *flag.FlagSet) body {
	o := soak.Options{Progress: 50}
	fs.DurationVar(&o.Duration, "duration", 10*time.Minute, "how long to inject faults (0: until -kills is reached)")
	fs.IntVar(&o.Kills, "kills", 0, "stop after this many kill -9 of the gateway (0: by -duration only)")
	fs.Uint64Var(&o.Seed, "seed", 0, "random seed for the fault schedule (0: from the clock; printed in the report)")
	fs.DurationVar(&o.MinRun, "min-run", 300*time.Millisecond, "shortest life of a gateway run before it is killed")
	fs.DurationVar(&o.MaxRun, "max-run", 1500*time.Millisecond, "longest life of a gateway run before it is killed")
	faults := fs.String("faults", strings.Join(soak.AllFaults, ","), "faults to inject: "+strings.Join(soak.AllFaults, ", "))
	fs.StringVar(&o.Dir, "dir", "", "work directory for the gateway's config and data (default: a temporary one)")
	fs.IntVar(&o.Progress, "progress", o.Progress, "log a progress line every N gateway runs (0: never)")
	verbose := fs.Bool("v", false, "log the harness's warnings and progress to stderr")
	return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("the weir executable: %w", err)
		}
		o.Command = func(args ...string) *exec.Cmd { return exec.Command(exe, args...) }
		o.Faults = nil
		for _, f := range strings.Split(*faults, ",") {
			if f = strings.TrimSpace(f); f != "" {
				o.Faults = append(o.Faults, f)
			}
		}
		if o.Seed == 0 {
			o.Seed = uint64(time.Now().UnixNano())
		}
		level := "warn"
		if *verbose {
			level = "info"
		}
		if o.Log, err = newLogger(stderr, level, "text"); err != nil {
			return err
		}
		rep, err := soak.Run(ctx, o)
		if rep != nil {
			soak.WriteReport(stdout, rep)
		}
		if err != nil {
			return err
		}
		if rep.Result.Failed() != "" {
			return errSoakFailed
		}
		return nil
	}
}
