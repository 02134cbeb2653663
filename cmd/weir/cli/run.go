package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"

	"golang.org/x/sync/errgroup"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/logcapture"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/rules"
	"github.com/weir-edge/weir/secevents"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/sinks/sparkplug"
	"github.com/weir-edge/weir/ui"
	"github.com/weir-edge/weir/writegate"
	"github.com/weir-edge/weir/writegate/mqttcmd"
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

// runFile runs the gateway from a configuration file.
func runFile(ctx context.Context, f runFlags, stdout, stderr io.Writer) error {
	cfg, err := config.Load(f.configPath)
	if err != nil {
		return err
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
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
	if data, err := os.ReadFile(f.configPath); err == nil {
		ctx = withConfigSource(ctx, f.configPath, data) // for the config.applied record
	}
	return runGateway(ctx, cfg, httpLn, log)
}

// runGateway builds the engine from cfg and runs it, with the HTTP API on
// httpLn when it is not nil, until ctx is done. startup are security
// events of what the caller did before (the demo's token), recorded once
// the audit trail and the event stream are open.
func runGateway(ctx context.Context, cfg *config.Config, httpLn net.Listener, log *slog.Logger, startup ...security.Event) error {
	node := cfg.NodeID()
	log = log.With("node", node)
	opts, err := cfg.Build(log)
	if err != nil {
		closeListener(httpLn)
		return err
	}
	// Until the engine runs, a failure must release what Build opened
	// (durable buffers hold file locks) and the listener.
	started := false
	defer func() {
		if !started {
			releaseBuffers(opts)
			closeListener(httpLn)
		}
	}()
	// Security events from every component (auth, API, MQTT commands, the
	// write gate, the audit trail) leave the box through one stream: as
	// samples to every sink and, when configured, to syslog. Components
	// take it as secEvents; Record never blocks them.
	secStream, err := secevents.New(cfg.SecurityEvents, node, log.With("component", "security_events"))
	if err != nil {
		return err
	}
	var secEvents security.Recorder = secStream
	gate, trail, err := buildWriteGate(cfg, opts, log, secEvents)
	if err != nil {
		return err
	}
	defer trail.Close()
	// Every write attempt, whatever its channel, reaches the SOC stream
	// from the one place it is decided (the trail has it already).
	gate.SetEvents(secEvents)
	// Security events of every component go to the audit trail (bounded,
	// never blocking) and to the SOC stream.
	auditEvents := audit.NewEventRecorder(trail, 0, secEvents, log.With("component", "audit"))
	events := security.Fanout{auditEvents, secEvents}
	warnInsecure(ctx, cfg, log, events)
	// Sparkplug sinks take DCMD/NCMD writes through the gate — only once a
	// policy could allow one, so a node stays read-only by default (and
	// only with the sink's commands.trust; untrusted ones are reported).
	if len(cfg.WriteGate.Policies) > 0 {
		for _, s := range opts.Sinks {
			if sp, ok := s.Sink.(*sparkplug.Sink); ok {
				sp.SetWriteGate(gate)
				sp.SetRecorder(events)
			}
		}
	}
	// Rules decide in the processor chain (never waiting on a buffer or a
	// connection); their writes and HTTP calls go to a bounded action queue.
	mgr, err := alarms.New(cfg.Alarms, cfg.Alarms.StateFilePath(cfg.DataDirOrDefault()), log.With("component", "alarms"))
	if err != nil {
		return err
	}
	runner, err := rules.NewRunner(cfg.Rules.Actions, gate, log.With("component", "rule_actions"))
	if err != nil {
		return err
	}
	ruleProc, err := rules.New(cfg.Rules, rules.Deps{Alarms: mgr, Actions: runner}, log.With("component", "rules"))
	if err != nil {
		return err
	}
	// The latest value of every tag, after processing, for the API; last,
	// so it sees derived tags and alarm events too.
	lastValues := latest.New(maxLatestTags)
	// Security events enter before the rules, so a rule can raise an
	// alarm on them (weir/_security/auth.login_failed).
	opts.Processors = append(opts.Processors, secStream, ruleProc, lastValues)
	opts.ProcessorNames = append(opts.ProcessorNames, "security-events", "rules", "latest-values")
	// Parsing and building a large configuration (10,000 tags) leaves tens
	// of MB of garbage behind; hand it back to the OS before running for
	// months.
	debug.FreeOSMemory()
	opts.Events = events // certificate rejections by sources' and sinks' peers
	eng, err := engine.New(opts)
	if err != nil {
		return err
	}
	loss := newLossWatch(eng, mgr, log.With("component", "loss_watch"))
	var sinkNames []string
	for _, s := range opts.Sinks {
		sinkNames = append(sinkNames, s.Name)
	}
	if err := loss.define(sinkNames); err != nil {
		return err
	}
	var writeCmds *mqttcmd.Commands
	if c := cfg.WriteCommands; c != nil {
		if writeCmds, err = mqttcmd.New(*c, gate, events, log.With("component", "write_commands")); err != nil {
			return err
		}
	}
	var alarmCmds *alarms.Commands
	if c := cfg.Alarms.Commands; c != nil {
		if alarmCmds, err = alarms.NewCommands(*c, mgr, events, log.With("component", "alarm_commands")); err != nil {
			return err
		}
	}
	authn, err := buildAuth(cfg, events, log)
	if err != nil {
		return err
	}

	// TLS or plain HTTP, decided for the address actually bound (apiserve.go).
	var served apiServing
	if httpLn != nil {
		if served, err = prepareAPI(cfg, httpLn.Addr(), events, log, os.Stderr); err != nil {
			return err
		}
	}

	// Everything is built: start. The engine owns the buffers from here.
	g, gctx := errgroup.WithContext(ctx)
	if err := runner.Start(gctx); err != nil {
		return err
	}
	defer runner.Close()
	started = true
	events.Record(ctx, configAppliedEvent(ctx, cfg, node))
	for _, ev := range startup {
		events.Record(ctx, ev)
	}
	g.Go(func() error { return eng.Run(gctx) })
	g.Go(func() error { return auditEvents.Run(gctx) })
	g.Go(func() error { return trail.Run(gctx) })
	g.Go(func() error { return gate.Run(gctx) })
	g.Go(func() error { return loss.run(gctx) })
	g.Go(func() error { return mgr.Run(gctx) })
	// Stops with the gateway; sends what is queued for syslog within its
	// drain_timeout first.
	g.Go(func() error { return secStream.Run(gctx) })
	if writeCmds != nil {
		g.Go(func() error { return writeCmds.Run(gctx) })
	}
	if alarmCmds != nil {
		g.Go(func() error { return alarmCmds.Run(gctx) })
	}
	if httpLn != nil {
		// Clients on this machine (weir alarms) find the API here.
		remove, err := writeAPIAddr(cfg.DataDirOrDefault(), served.url)
		if err != nil {
			log.Warn("api address file not written; weir alarms will need -api", "err", err)
		} else {
			defer remove()
		}
		values := &api.Values{Gate: gate, Store: lastValues, Audit: trail, Log: log.With("component", "api")}
		alarmAPI := &api.Alarms{Store: mgr, Events: events, Log: log.With("component", "api")}
		tokens := &api.Tokens{Store: authn.Tokens(), MaxLifetime: authn.TokenMaxLifetime(), Events: events, Log: log.With("component", "api")}
		history := &api.History{Store: historyStore(opts.Sinks), Log: log.With("component", "api")}
		webUI, err := ui.New(ui.Options{Sessions: authn, Status: eng, Values: lastValues, NodeID: node,
			Version: currentVersion().version, Log: log.With("component", "ui")})
		if err != nil {
			return err
		}
		srv := api.New(api.Options{Status: withAuditStatus{eng, trail}, NodeID: node, Version: currentVersion().version, Logger: log.With("component", "api"),
			Auth: authn,
			Extra: func(mux *http.ServeMux) {
				values.Mount(mux)
				alarmAPI.Mount(mux)
				tokens.Mount(mux)
				history.Mount(mux)
				(&api.WritePolicy{Gate: gate}).Mount(mux)
				(&api.AuditVerify{Trail: trail, Log: log.With("component", "api")}).Mount(mux)
				webUI.Mount(mux)
			},
			SecurityStats: secStream, AuditStats: trail,
			TLS: served.tls, AllowedHosts: served.hosts, Limits: served.limits, Events: events})
		g.Go(func() error { return srv.Serve(gctx, httpLn) })
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func closeListener(ln net.Listener) {
	if ln != nil {
		ln.Close()
	}
}

// releaseBuffers frees durable buffers opened by Build when the gateway
// fails before its engine took them over.
func releaseBuffers(opts engine.Options) {
	for _, s := range opts.Sinks {
		if r, ok := s.Buffer.(pipeline.Releaser); ok {
			_ = r.Release()
		}
		if r, ok := s.DeadLetters.(pipeline.Releaser); ok {
			_ = r.Release()
		}
	}
}

// maxLatestTags bounds the latest-value table behind /api/v1/values.
const maxLatestTags = 100_000

// buildWriteGate opens the audit trail and the one gate every write to a
// device goes through, and registers every source that can write, tag by
// tag. With no write_policies the gate denies (and audits) every attempt.
func buildWriteGate(cfg *config.Config, opts engine.Options, log *slog.Logger, events security.Recorder) (*writegate.Gate, *audit.Log, error) {
	ac := cfg.Audit
	ac.File = cfg.AuditFile()
	ac.CheckpointFile = cfg.AuditCheckpointFile()
	ao := audit.Options{Log: log.With("component", "audit"), Events: events, Node: cfg.NodeID(), DataDir: cfg.DataDirOrDefault()}
	trail, err := audit.OpenWith(ac, ao)
	if err != nil {
		// A truncated, rewritten or unreadable trail stops writes to
		// devices (the gate refuses them while trail.Err() is set), not
		// the collection of data; it is logged, raised as an audit.problem
		// and shown failed in /status.
		trail = audit.Unavailable(ac.File, err, ao)
	}
	gate, err := writegate.New(cfg.WriteGate, trail, log.With("component", "writegate"))
	if err != nil {
		trail.Close()
		return nil, nil, err
	}
	for _, s := range opts.Sources {
		w, ok := s.Source.(writegate.Writer)
		if !ok {
			continue
		}
		lister, ok := s.Source.(pipeline.TagLister)
		if !ok {
			continue
		}
		for _, t := range lister.Tags() {
			if err := gate.Register(t.Path, w); err != nil {
				trail.Close()
				return nil, nil, fmt.Errorf("write gate: source %s: %w", s.Name, err)
			}
		}
	}
	return gate, trail, nil
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
