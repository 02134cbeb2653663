// Package cli implements the weir command: one file per subcommand.
//
// Every command follows one rule: what it works on — a configuration
// file, an audit trail, a data directory, an endpoint, an alarm name — is
// a positional argument; everything else is a flag, and flags may come
// before or after the arguments. Older flag spellings of a positional
// argument (run -c FILE, audit verify -file PATH, buffer -dir DIR) are
// still accepted. The command table below drives dispatch, -h (with
// examples) and shell completion, so the three cannot disagree.
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

// body is a command's work once its flags are parsed; pos holds the
// positional arguments.
type body func(ctx context.Context, pos []string, stdout, stderr io.Writer) error

// command is one row of the command table.
type command struct {
	name    string
	args    string // the usage line after "weir name"
	summary string
	// about, when set, says more than the summary in -h.
	about    string
	examples []string
	// define adds the command's flags to fs and returns its body; help
	// and completion call it on a scratch FlagSet and drop the body.
	define func(fs *flag.FlagSet) body
	// run, when set, replaces define for dispatch: a command that parses
	// its own flags (validate); define then only describes them.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// verbs are the actions of commands used as "weir name verb".
	verbs []verb
	// defaultVerb runs when the first argument names no verb.
	defaultVerb string
	// complete is what positional arguments complete to: "file", "dir"
	// or "" (nothing).
	complete string
}

// verb is an action of a command (weir alarms ack, weir buffer export).
type verb struct {
	name    string
	args    string
	summary string
	define  func(fs *flag.FlagSet) body
}

func commands() []command {
	return []command{
		{name: "run", args: "[flags] [FILE]", summary: "run the gateway from FILE (without it: the built-in demo plant)",
			examples: []string{
				"weir run                                  # the demo: simulated plant, embedded broker, gateway",
				"weir run /etc/weir/weir.yaml",
				"weir run --data-dir ~/.local/share/weir gateway.yaml",
				"weir run --print-config gateway.yaml      # the configuration actually used, then exit",
			}, define: defineRun, complete: "file"},
		{name: "validate", args: "[-offline] FILE...", summary: "check configuration files and exit non-zero on problems",
			examples: []string{
				"weir validate /etc/weir/weir.yaml",
				"weir validate -offline site-a.yaml site-b.yaml   # written for other machines: secrets and files not resolved",
			}, about: validateAbout, define: describeValidate, run: validateCmd, complete: "file"},
		{name: "sim", args: "[flags] [FILE]", summary: "serve the simulated plant over Modbus TCP (and OPC UA)",
			examples: []string{
				"weir sim",
				"weir sim -opcua-listen 127.0.0.1:4840",
				"weir sim -sample > plant.yaml && weir sim plant.yaml",
			}, define: defineSim, complete: "file"},
		{name: "bench", args: "[flags]", summary: "measure throughput and latency end to end",
			examples: []string{
				"weir bench -duration 10s",
				"weir bench -source opcua -items 1000",
				"weir bench -routes 3 -duration 30s      # three sinks on different routes",
				"weir bench -bandwidth                   # bytes per sample: JSON, batch, Sparkplug B, routes",
			}, define: defineBench},
		{name: "soak", args: "[flags]", summary: "kill, cut and starve a real gateway for a while and check that nothing accepted is lost",
			examples: []string{
				"weir soak -duration 10m",
				"weir soak -duration 0 -kills 1000 -faults kill,broker,net,disk -seed 7   # 1,000 kill -9 cycles",
				"weir soak -duration 1h -faults kill,poison -v           # progress on stderr",
			}, define: defineSoak},
		{name: "browse", args: "[flags] ENDPOINT", summary: "walk an OPC UA server's address space and print a config snippet",
			examples: []string{
				"weir browse opc.tcp://127.0.0.1:4840",
				"weir browse -snippet opc.tcp://plc:4840 > items.yaml",
				"weir browse -server -depth 2 opc.tcp://plc:4840   # include the Server object's diagnostics",
			}, define: defineBrowse},
		{name: "alarms", args: "VERB [flags] [NAME]", summary: "list, acknowledge or shelve alarms of a running gateway",
			examples: []string{
				"weir alarms list                          # the gateway found from its data dir",
				"weir alarms list --data-dir ~/.cache/weir/demo",
				"weir alarms ack -comment 'checked the bearing' filler_high_vibration",
				"weir alarms shelve -for 30m -api http://10.0.0.5:8080 filler_high_vibration",
			}, verbs: alarmsVerbs()},
		{name: "flows", args: "[-json] [flags]", summary: "show a running gateway's data flows: source → chain → route → sink, with rates",
			about: flowsAbout,
			examples: []string{
				"weir flows                                # the gateway found from its data dir",
				"weir flows -json | jq '.sinks[] | {name, denied: .denied_samples.total}'",
				"weir flows -api https://10.0.0.5:8443 -token-file ~/.weir-viewer-token",
			}, define: defineFlows},
		{name: "reload", args: "[flags]", summary: "make a running gateway re-read its configuration file and apply it live",
			about: reloadAbout,
			examples: []string{
				"weir reload                               # the gateway found from its data dir",
				"weir reload --data-dir /var/lib/weir -token-file ~/.weir-engineer-token",
				"kill -HUP $(pidof weir)                   # the same, by signal",
			}, define: defineReload},
		{name: "audit", args: "verify|pubkey [flags] [FILE]", summary: "verify the audit trail against its signed checkpoint; print the checkpoint signing key",
			examples: []string{
				"weir audit verify                         # DATA_DIR/audit/writes.jsonl",
				"weir audit verify ~/.cache/weir/demo/audit/writes.jsonl",
				"weir audit verify -key-env WEIR_AUDIT_KEY /var/lib/weir/audit/writes.jsonl",
				"weir audit verify -checkpoint checkpoints.jsonl -pubkey ed25519:BASE64 /var/lib/weir/audit/writes.jsonl",
				"weir audit pubkey                         # the key checkpoints are signed with",
			}, verbs: auditVerbs(), complete: "file"},
		{name: "token", args: "create|list|revoke [flags] [DIR]", summary: "create, list or revoke API tokens of a data dir (a running gateway picks them up)",
			about: "A token is shown once, at creation; only its SHA-256 is stored (DIR/auth/tokens, 0600). Send it as\n\"Authorization: Bearer weir_…\". Every token expires; revoke one by its id.",
			examples: []string{
				"weir token create -user scada -role operator -expires 720h /var/lib/weir",
				"weir token create -user me -role operator -expires 168h -cli   # saved for weir alarms on this machine",
				"weir token list",
				"weir token revoke 3f9c2a71d04e8b56",
			}, verbs: tokenVerbs(), complete: "dir"},
		{name: "history", args: "export [flags] [DIR]", summary: "export the local historian's samples as CSV or JSON lines (read-only; the gateway may be running)",
			about: "DIR is the gateway's data dir (its historian/ is read) or a historian directory itself.\n-tag is a glob per path segment (plant/line1/*).",
			examples: []string{
				"weir history export /var/lib/weir > history.csv",
				"weir history export -format jsonl -tag 'plant/line1/*' -from 2026-01-02T00:00:00Z -to 2026-01-03T00:00:00Z",
			}, verbs: historyVerbs(), complete: "dir"},
		{name: "user", args: "hash-password", summary: "make the password hash of a local API user (auth.users)",
			examples: []string{
				"weir user hash-password                  # asks twice, prints $argon2id$v=19$…",
				"printf '%s\\n' \"$PW\" | weir user hash-password",
			}, verbs: userVerbs()},
		{name: "buffer", args: "[list|export|purge|dead|replay] [flags] [DIR] [SINK]", summary: "inspect, export or purge the durable buffers of a stopped gateway, and its dead letters",
			examples: []string{
				"weir buffer                               # list the stores of /var/lib/weir",
				"weir buffer list ~/.cache/weir/demo",
				"weir buffer export /var/lib/weir uns > backlog.jsonl",
				"weir buffer purge -yes /var/lib/weir uns",
				"weir buffer dead /var/lib/weir uns        # samples the destination refused, per cause",
				"weir buffer replay -yes /var/lib/weir uns",
			}, verbs: bufferVerbs(), defaultVerb: "list", complete: "dir"},
		{name: "command", args: "sign [flags] [FILE]", summary: "sign a write or alarm command for the MQTT command topics",
			examples: []string{
				"weir command sign -caller mes -key-env WEIR_CMD_KEY_MES setpoint.json   # {\"path\":\"acme/line1/speed_sp\",\"value\":120}",
				"weir command sign -kind alarm -caller hmi -key-file /etc/weir/hmi.key ack.json | mosquitto_pub -t weir/_commands/alarms/ack -q 1 -s",
			}, verbs: commandVerbs(), complete: "file"},
		{name: "hub", args: "run|publish|site|token|keys|audit [flags]", summary: "the fleet's control plane: run it, publish configuration layers, enrol sites",
			about: hubAbout,
			examples: []string{
				"weir hub run -data-dir /var/lib/weir-hub -listen 0.0.0.0:4222 -tls-auto",
				"weir hub run -replica hub-a -cluster-listen 10.0.0.1:6222 -routes nats-route://10.0.0.2:6222,nats-route://10.0.0.3:6222",
				"weir hub token -site s1 -groups eu,line3 -ttl 24h",
				"weir hub publish -layer base -file base.yaml",
				"weir hub publish -layer group:eu -file eu.yaml",
				"weir hub site -site s1 -groups eu,line3",
				"weir hub keys rotate",
				"weir hub audit | jq -c 'select(.action == \"publish.refused\")'",
			}, verbs: hubVerbs()},
		{name: "enroll", args: "-hub URL -site ID -token T [flags]", summary: "enrol this site with a fleet hub (one-time token): keys made here, creds written to the data dir",
			examples: []string{
				"weir enroll -hub tls://hub.example:4222 -site s1 -token $TOKEN -enroll-creds enroll.creds -ca hub-ca.pem",
				"weir run --hub tls://hub.example:4222 --site s1 /etc/weir/weir.yaml",
			}, define: defineEnroll},
		{name: "version", args: "[-v|-sbom] [BINARY]", summary: "print the version, commit and build date",
			examples: []string{"weir version", "weir --version", "weir version -v", "weir version -sbom > weir.cdx.json   # CycloneDX SBOM for a scanner",
				"weir version -sbom dist/weir-v1.4.0-linux-arm > weir-linux-arm.cdx.json   # of another weir binary"}, define: defineVersion},
		{name: "completion", args: "bash|zsh|fish", summary: "print a shell completion script",
			examples: []string{
				"weir completion bash > /etc/bash_completion.d/weir   # or: source <(weir completion bash)",
				"weir completion zsh > \"${fpath[1]}/_weir\"",
				"weir completion fish > ~/.config/fish/completions/weir.fish",
			}, define: defineCompletion},
	}
}

// errUsage makes Main exit with status 2 without printing more.
var errUsage = errors.New("usage")

// Main runs the weir command line and returns the exit status. Bare weir
// prints the help: the demo is weir run.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return 0
	}
	switch name := args[0]; name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c, ok := lookup(args[1]); ok {
				commandHelp(stdout, c, args[2:])
				return 0
			}
		}
		usage(stdout)
		return 0
	case "-version", "--version":
		args = []string{"version"}
	}
	c, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "weir: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if wantsHelp(args[1:]) {
		commandHelp(stdout, c, args[1:])
		return 0
	}
	// Whatever a command creates — a gateway's data dir, the store that
	// buffer purge or replay rewrites (often as root), a profile — is
	// private to the user who ran it.
	defer privateUmask()()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := dispatch(ctx, c, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "weir %s: %v\n", c.name, err)
		return 1
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// runNamed runs the named command as Main would, without the signal handling
// and exit codes: for tests and for commands calling one another.
func runNamed(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	c, ok := lookup(name)
	if !ok {
		return fmt.Errorf("no command %q", name)
	}
	return dispatch(ctx, c, args, stdout, stderr)
}

// dispatch picks the verb, parses the flags and runs the body.
func dispatch(ctx context.Context, c command, args []string, stdout, stderr io.Writer) error {
	if c.run != nil {
		return c.run(ctx, args, stdout, stderr)
	}
	name, define := c.name, c.define
	if len(c.verbs) > 0 {
		v, rest, ok := pickVerb(c, args)
		if !ok {
			if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
				fmt.Fprintf(stderr, "weir %s: unknown action %q\n", c.name, args[0])
			}
			verbUsage(stderr, c)
			return errUsage
		}
		name, define, args = c.name+" "+v.name, v.define, rest
	}
	fs := newFlagSet(name, stderr)
	run := define(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // the flag package has said what is wrong
	}
	return run(ctx, pos, stdout, stderr)
}

// pickVerb finds the verb args start with, or the default verb.
func pickVerb(c command, args []string) (verb, []string, bool) {
	if len(args) > 0 {
		for _, v := range c.verbs {
			if v.name == args[0] {
				return v, args[1:], true
			}
		}
	}
	if c.defaultVerb != "" {
		for _, v := range c.verbs {
			if v.name == c.defaultVerb {
				return v, args, true
			}
		}
	}
	return verb{}, nil, false
}

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// parseArgs parses flags wherever they are among the positional
// arguments (weir browse ENDPOINT -depth 2); "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Weir — edge data gateway between the plant floor and IT.")
	fmt.Fprintln(w, "\nUsage: weir <command> [flags] [arguments]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nTry the demo (a simulated plant → Weir → MQTT):  weir run")
	fmt.Fprintln(w, "Run 'weir <command> -h' for a command's flags and examples; 'weir --version' for the version.")
}

// commandHelp prints the usage, flags and examples of c (of its verb when
// args name one).
func commandHelp(w io.Writer, c command, args []string) {
	if len(c.verbs) == 0 || c.run != nil {
		fs := flag.NewFlagSet("weir "+c.name, flag.ContinueOnError)
		c.define(fs)
		printHelp(w, "weir "+c.name, c.args, c.summary, c.about, fs, c.examples)
		return
	}
	if len(args) > 0 {
		for _, v := range c.verbs {
			if v.name == args[0] {
				fs := flag.NewFlagSet("weir "+c.name+" "+v.name, flag.ContinueOnError)
				v.define(fs)
				printHelp(w, "weir "+c.name+" "+v.name, v.args, v.summary, "", fs, c.examples)
				return
			}
		}
	}
	verbUsage(w, c)
	fmt.Fprintln(w, "\nExamples:")
	for _, e := range c.examples {
		fmt.Fprintln(w, "  "+e)
	}
}

func verbUsage(w io.Writer, c command) {
	fmt.Fprintf(w, "weir %s: %s\n\nUsage:\n", c.name, c.summary)
	for _, v := range c.verbs {
		fmt.Fprintf(w, "  weir %s %s %s\n      %s\n", c.name, v.name, v.args, v.summary)
	}
	fmt.Fprintf(w, "Run 'weir %s VERB -h' for a verb's flags.\n", c.name)
}

func printHelp(w io.Writer, name, args, summary, about string, fs *flag.FlagSet, examples []string) {
	if summary != "" {
		summary = strings.ToUpper(summary[:1]) + summary[1:]
	}
	fmt.Fprintf(w, "Usage: %s %s\n\n%s.\n", name, args, summary)
	if about != "" {
		fmt.Fprintln(w, "\n"+about)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags (-name or --name):")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if len(examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range examples {
			fmt.Fprintln(w, "  "+e)
		}
	}
}

// newFlagSet is the flag set of a command (name may be "alarms ack"); a
// parse error prints the command's help to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("weir "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		cmd, verbName, _ := strings.Cut(name, " ")
		c, ok := lookup(cmd)
		if !ok {
			fs.PrintDefaults()
			return
		}
		args, summary, about := c.args, c.summary, c.about
		for _, v := range c.verbs {
			if v.name == verbName {
				args, summary, about = v.args, v.summary, ""
			}
		}
		printHelp(fs.Output(), "weir "+name, args, summary, about, fs, c.examples)
	}
	return fs
}

// describeValidate lists validate's flags for help and completion;
// validate.go parses them itself.
func describeValidate(fs *flag.FlagSet) body {
	fs.Bool("offline", false, "check a file written for another machine: do not resolve its secrets and files")
	fs.String("c", "", "configuration file (old form of the FILE argument)")
	return nil
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
