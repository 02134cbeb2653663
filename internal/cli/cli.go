// Package cli implements the weir command: one file per subcommand.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/weir-edge/weir/internal/logcapture"
)

// Version is set at build time with -ldflags "-X github.com/weir-edge/weir/internal/cli.Version=…".
var Version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "run the gateway (with no -c: the built-in demo plant)", runCmd},
		{"validate", "check a configuration file and exit non-zero on problems", validateCmd},
		{"sim", "serve the simulated plant over Modbus TCP", simCmd},
		{"bench", "measure throughput and latency end to end", benchCmd},
		{"browse", "walk an OPC UA server's address space and print a config snippet", browseCmd},
		{"alarms", "list, acknowledge or shelve alarms of a running gateway", alarmsCmd},
		{"audit", "verify the write audit trail: weir audit verify -file PATH", auditCmd},
		{"buffer", "inspect, export or purge the durable buffers of a stopped gateway", bufferCmd},
		{"version", "print the version", versionCmd},
	}
}

// errUsage makes Main exit with status 2 without printing more.
var errUsage = errors.New("usage")

// Main runs the weir command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"run"}
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
			return 2
		default:
			fmt.Fprintf(stderr, "weir %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "weir: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Weir — edge data gateway between the plant floor and IT.")
	fmt.Fprintln(w, "\nUsage: weir <command> [flags]\n\nCommands:")
	cs := commands()
	for _, c := range cs {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'weir <command> -h' for a command's flags.")
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("weir "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// newLogger builds the process logger from level and format names.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "", "info":
		lv = slog.LevelInfo
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("unknown log level %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: logcapture.UTCTime} // RFC 3339 ms UTC
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q", format)
}
