package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/gateway"
	"github.com/weir-edge/weir/internal/logcapture"
	"github.com/weir-edge/weir/security"
)

type runFlags struct {
	configPath   string
	httpListen   string
	brokerListen string
	simListen    string
	seed         uint64
	logLevel     string
	logFormat    string
	printConfig  bool
	dataDir      string
	// A site of a fleet: the hub block's keys from the command line.
	hubURL, hubSite, hubCreds string
}

// defineRun adds run's flags; FILE (or the old -c FILE) names the
// configuration, and without it the demo runs.
func defineRun(fs *flag.FlagSet) body {
	var f runFlags
	fs.StringVar(&f.configPath, "c", "", "configuration file (old form of the FILE argument)")
	fs.StringVar(&f.httpListen, "http-listen", "", "address of the HTTP status/metrics listener (overrides http.listen; demo default 127.0.0.1:8080, or a free port if taken)")
	fs.StringVar(&f.brokerListen, "broker-listen", "", "demo only: address of the embedded MQTT broker (default 127.0.0.1:1883, or a free port if taken)")
	fs.StringVar(&f.simListen, "sim-listen", "", "demo only: address of the simulated PLC (default 127.0.0.1:5020, or a free port if taken)")
	fs.Uint64Var(&f.seed, "seed", 1, "demo only: simulator seed")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json (overrides log.format)")
	fs.StringVar(&f.dataDir, "data-dir", "", "state directory: durable buffers, audit trail, API address (overrides data_dir; default "+config.DefaultDataDir+", demo: the user cache dir)")
	fs.StringVar(&f.hubURL, "hub", "", "follow this fleet hub (NATS URL; overrides hub.url)")
	fs.StringVar(&f.hubSite, "site", "", "this site's id at the hub (overrides hub.site)")
	fs.StringVar(&f.hubCreds, "creds", "", "the site's NATS credentials (overrides hub.creds_file; default DATA_DIR/fleet/site.creds from weir enroll)")
	fs.BoolVar(&f.printConfig, "print-config", false, "print the configuration actually used (after these flags; secrets as references) and exit")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		switch {
		case len(pos) > 1:
			fmt.Fprintf(stderr, "weir run: one configuration file at most, got %q\n", pos)
			return errUsage
		case len(pos) == 1 && f.configPath != "" && f.configPath != pos[0]:
			fmt.Fprintf(stderr, "weir run: two configuration files: -c %s and %s\n", f.configPath, pos[0])
			return errUsage
		case len(pos) == 1:
			f.configPath = pos[0]
		}
		if f.configPath == "" {
			return runDemo(ctx, f, stdout, stderr)
		}
		if f.brokerListen != "" || f.simListen != "" || f.seed != 1 {
			fmt.Fprintln(stderr, "weir run: -broker-listen, -sim-listen and -seed are for the demo only; a configuration file says where its sources and sinks are")
			return errUsage
		}
		return runFile(ctx, f, stdout, stderr)
	}
}

// runFile runs the gateway from a configuration file; SIGHUP re-reads the
// file and applies it live (see gateway.Reload).
func runFile(ctx context.Context, f runFlags, stdout, stderr io.Writer) error {
	data, err := os.ReadFile(f.configPath)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg, err := config.Parse(f.configPath, data, os.LookupEnv)
	if err != nil {
		return err
	}
	// The command line wins over the file, at start and at every reload.
	adjust := func(c *config.Config) {
		if f.dataDir != "" {
			c.DataDir = f.dataDir
		}
	}
	adjust(cfg)
	hub, err := hubBlock(f, cfg)
	if err != nil {
		return err
	}
	if hub != nil {
		// Configurations from the hub carry no hub block: the site keeps
		// its own, so it never shows as a change.
		fileAdjust := adjust
		adjust = func(c *config.Config) {
			fileAdjust(c)
			h := *hub
			c.Hub = &h
		}
		adjust(cfg)
	}
	if f.printConfig {
		return printConfig(stdout, f, cfg.DataDirOrDefault())
	}
	log, err := newLogger(stderr, firstNonEmpty(f.logLevel, cfg.Log.Level), firstNonEmpty(f.logFormat, cfg.Log.Format))
	if err != nil {
		return err
	}
	defer logcapture.Install(log)() // library and log-package output as slog records
	defer privateUmask()()          // data-dir files 0600, directories 0700
	if err := ensureDataDir(cfg.DataDirOrDefault(), f.configPath); err != nil {
		return err
	}
	warnOpenDataDir(log, cfg.DataDirOrDefault())
	var httpLn net.Listener
	if addr := firstNonEmpty(f.httpListen, cfg.HTTP.Listen); addr != "" {
		httpLn, err = net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		log.Info("http listening", "addr", httpLn.Addr().String())
	}
	g, err := gateway.New(cfg, gatewayOptions(log, httpLn, stderr, gateway.Options{ConfigPath: f.configPath, ConfigData: data, Adjust: adjust}))
	if err != nil {
		return err
	}
	stopHUP := reloadOnHangup(ctx, g, log)
	defer stopHUP()
	if hub != nil {
		return runFollowing(ctx, g, hub, cfg.DataDirOrDefault(), log)
	}
	return g.Run(ctx)
}

// gatewayOptions completes o with what every CLI start passes.
func gatewayOptions(log *slog.Logger, ln net.Listener, stderr io.Writer, o gateway.Options) gateway.Options {
	o.Logger, o.Listener, o.Stderr, o.Version = log, ln, stderr, currentVersion().version
	return o
}

// runGateway builds the gateway from cfg and runs it, with the HTTP API
// on httpLn when it is not nil, until ctx is done (the demo, tests).
// startup are security events of what the caller did before.
func runGateway(ctx context.Context, cfg *config.Config, httpLn net.Listener, log *slog.Logger, startup ...security.Event) error {
	g, err := gateway.New(cfg, gatewayOptions(log, httpLn, os.Stderr, gateway.Options{Startup: startup}))
	if err != nil {
		return err
	}
	// SIGHUP (systemctl reload, a habit) must not kill a gateway from no
	// file: it applies its own configuration again, a logged no-op.
	stopHUP := reloadOnHangup(ctx, reapplier{g}, log)
	defer stopHUP()
	return g.Run(ctx)
}

// reapplier is a gateway from no file as a SIGHUP drives it.
type reapplier struct{ g *gateway.Gateway }

func (r reapplier) Reload(ctx context.Context, actor string) (gateway.Applied, error) {
	return r.g.Reapply(ctx, actor)
}

// reloader is what a SIGHUP drives (gateway.Gateway).
type reloader interface {
	Reload(ctx context.Context, actor string) (gateway.Applied, error)
}

// reloadOn applies the configuration file again at every value of sig
// until ctx is done, and logs the outcome.
func reloadOn(ctx context.Context, r reloader, sig <-chan os.Signal, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			res, err := r.Reload(ctx, "sighup")
			if err != nil {
				log.Error("reload on SIGHUP failed; the running configuration stays", "err", err, "problems", res.Problems.Error())
				continue
			}
			log.Info("reload on SIGHUP applied", "sha256", res.SHA256, "changes", res.Summary, "restart_needed", res.Restart)
		}
	}
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// listenOrFallback listens on preferred, or on a free port of the same host
// when it is taken (this machine may run its own Mosquitto on 1883).
func listenOrFallback(preferred string, pinned bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", preferred)
	if err == nil || pinned {
		return ln, err
	}
	host, _, splitErr := net.SplitHostPort(preferred)
	if splitErr != nil {
		return nil, err
	}
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}
