package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
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
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var f runFlags
	fs.StringVar(&f.configPath, "c", "", "configuration file; without it the built-in demo plant runs")
	fs.StringVar(&f.httpListen, "http-listen", "", "address of the HTTP status/metrics listener (overrides http.listen; demo default 127.0.0.1:8080, or a free port if taken)")
	fs.StringVar(&f.brokerListen, "broker-listen", "", "demo only: address of the embedded MQTT broker (default 127.0.0.1:1883, or a free port if taken)")
	fs.StringVar(&f.simListen, "sim-listen", "", "demo only: address of the simulated PLC (default 127.0.0.1:5020, or a free port if taken)")
	fs.Uint64Var(&f.seed, "seed", 1, "demo only: simulator seed")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json (overrides log.format)")
	fs.StringVar(&f.dataDir, "data-dir", "", "state directory: durable buffers (overrides data_dir)")
	fs.BoolVar(&f.printConfig, "print-config", false, "demo only: print the demo's generated configuration and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "weir run: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if f.configPath == "" {
		return runDemo(ctx, f, stdout, stderr)
	}
	cfg, err := config.Load(f.configPath)
	if err != nil {
		return err
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	log, err := newLogger(stderr, firstNonEmpty(f.logLevel, cfg.Log.Level), firstNonEmpty(f.logFormat, cfg.Log.Format))
	if err != nil {
		return err
	}
	var httpLn net.Listener
	if addr := firstNonEmpty(f.httpListen, cfg.HTTP.Listen); addr != "" {
		httpLn, err = net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		log.Info("http listening", "addr", httpLn.Addr().String())
	}
	return runGateway(ctx, cfg, httpLn, log)
}

// runGateway builds the engine from cfg and runs it, with the HTTP API on
// httpLn when it is not nil, until ctx is done.
func runGateway(ctx context.Context, cfg *config.Config, httpLn net.Listener, log *slog.Logger) error {
	node := cfg.Node.ID
	if node == "" {
		node, _ = os.Hostname()
	}
	log = log.With("node", node)
	opts, err := cfg.Build(log)
	if err != nil {
		if httpLn != nil {
			httpLn.Close()
		}
		return err
	}
	eng, err := engine.New(opts)
	if err != nil {
		if httpLn != nil {
			httpLn.Close()
		}
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return eng.Run(gctx) })
	if httpLn != nil {
		srv := api.New(api.Options{Status: eng, NodeID: node, Version: Version, Logger: log.With("component", "api")})
		g.Go(func() error { return srv.Serve(gctx, httpLn) })
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
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
