package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/flows"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/route"
	"github.com/weir-edge/weir/rules"
	"github.com/weir-edge/weir/secevents"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/sinks/historian"
	"github.com/weir-edge/weir/sinks/sparkplug"
	"github.com/weir-edge/weir/ui"
	"github.com/weir-edge/weir/writegate"
	"github.com/weir-edge/weir/writegate/mqttcmd"
)

// Options is what the caller (the CLI, bench, a test, an embedding
// program) hands the gateway besides its configuration.
type Options struct {
	// Logger is the root logger; nil discards.
	Logger *slog.Logger
	// Listener serves the HTTP API; nil: no API. The gateway closes it.
	Listener net.Listener
	// Startup are security events of what the caller did before (the
	// demo's token), recorded once the audit trail is open.
	Startup []security.Event
	// ConfigPath and ConfigData are the file the configuration was read
	// from and exactly its bytes: the config.applied record hashes them,
	// reload re-reads the path, and an apply through the API rewrites it.
	// Empty path: the configuration is built in (the demo); it is applied
	// in memory only.
	ConfigPath string
	ConfigData []byte
	// Adjust re-applies the command line's overrides (data_dir, ...) to
	// every configuration read for a reload, so that they do not show as
	// changes.
	Adjust func(*config.Config)
	// Stderr receives what an operator must see even with logs elsewhere
	// (the TLS certificate's fingerprint); nil: io.Discard.
	Stderr io.Writer
	// Version is reported by /status and /metrics.
	Version string
	// Actor names who started the gateway in its config.applied record;
	// default "cli".
	Actor string
	// WrapSource, when set, wraps every source as it is built (bench taps
	// receipt times with it), at start and at every reload.
	WrapSource func(pipeline.Source) pipeline.Source
}

// Gateway is one running Weir node: engine, write gate, audit trail,
// alarms, rules, security events and the HTTP API, composed in one place
// (New) and reconfigured as a whole (Apply).
type Gateway struct {
	opts Options
	log  *slog.Logger
	node string

	// Built by New, kept for the gateway's life (and across reloads).
	eng         *engine.Engine
	secStream   *secevents.Stream
	auditEvents *audit.EventRecorder
	events      security.Recorder
	trail       *audit.Log
	gate        *writegate.Gate
	mgr         *alarms.Manager
	alarmStage  *alarms.Stage
	lastValues  *latest.Store
	loss        *lossWatch
	// flows keeps the snapshots the data-flow map's rates come from.
	flows *flows.Sampler
	// The parts a reload may replace (live.go), under mu.
	runner    *rules.Runner
	writeCmds *mqttcmd.Commands
	alarmCmds *alarms.Commands
	writeTask *task
	alarmTask *task
	// runCtx is Run's context, for what a reload starts; taskErr carries
	// a replaced part's failure to Run.
	runCtx  context.Context
	taskErr chan error
	authn   *auth.Authenticator
	served  apiServing
	ln      net.Listener

	// applyMu serialises Apply and guards sources and writers, which
	// only New and Apply touch.
	applyMu sync.Mutex
	sources map[string]pipeline.Source // by name, as the engine runs them
	writers map[string][]string        // source name → write gate prefixes registered for it

	// mu guards what readers (the API) see of the running state.
	mu      sync.Mutex
	running bool // Run has started the engine; Apply may change it
	started bool // Run was called: it owns the buffers
	run     runningConfig
	sinks   []engine.SinkSpec // the engine's sinks, for the API's historian

	// denied holds, per sink name, the tags already reported as
	// flow.egress_denied, handed to each route built for that name so a
	// reload does not report them again; dropped with the sink.
	deniedMu sync.Mutex
	denied   map[string]*route.DeniedSet
	// runningCh is closed once Run has started the engine (WaitRunning).
	runningCh    chan struct{}
	writeDenials atomic.Uint64 // the write gate's refusals (FleetState)
}

// New builds everything from cfg — no network I/O, no goroutines. On
// error what was opened (durable buffers, the audit trail, the listener)
// is released.
func New(cfg *config.Config, opts Options) (_ *Gateway, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	if opts.Actor == "" {
		opts.Actor = "cli"
	}
	g := &Gateway{opts: opts, node: cfg.NodeID(), ln: opts.Listener, writers: map[string][]string{}, sources: map[string]pipeline.Source{},
		taskErr: make(chan error, 1), runningCh: make(chan struct{})}
	g.log = opts.Logger.With("node", g.node)
	log := g.log
	eopts, err := cfg.Build(log)
	if err != nil {
		closeListener(opts.Listener)
		return nil, err
	}
	g.wrapSources(eopts.Sources)
	// Until Run owns them, a failure must release what Build opened
	// (durable buffers hold file locks), the trail and the listener.
	defer func() {
		if err != nil {
			releaseBuffers(eopts.Sinks)
			closeListener(opts.Listener)
			if g.trail != nil {
				g.trail.Close()
			}
		}
	}()
	// Security events from every component (auth, API, MQTT commands, the
	// write gate, the audit trail) leave the box through one stream: as
	// samples to every sink and, when configured, to syslog. Components
	// take it as secEvents; Record never blocks them.
	if g.secStream, err = secevents.New(cfg.SecurityEvents, g.node, log.With("component", "security_events")); err != nil {
		return nil, err
	}
	var secEvents security.Recorder = g.secStream
	if g.gate, g.trail, err = buildWriteGate(cfg, log, secEvents); err != nil {
		return nil, err
	}
	for _, s := range eopts.Sources {
		g.sources[s.Name] = s.Source
		if err := g.registerWriters(s); err != nil {
			return nil, err
		}
	}
	// Every write attempt, whatever its channel, reaches the SOC stream
	// from the one place it is decided (the trail has it already).
	g.gate.SetEvents(denialCounter{secEvents, &g.writeDenials})
	// Security events of every component go to the audit trail (bounded,
	// never blocking) and to the SOC stream.
	g.auditEvents = audit.NewEventRecorder(g.trail, 0, secEvents, log.With("component", "audit"))
	g.events = security.Fanout{g.auditEvents, secEvents}
	warnInsecure(context.Background(), cfg, log, g.events)
	g.wireSinks(cfg, eopts.Sinks)
	// Rules decide in the processor chain (never waiting on a buffer or a
	// connection); their writes and HTTP calls go to a bounded action
	// queue. The alarm manager, the action runner and the latest values
	// live as long as the gateway: a reload keeps alarm states and values.
	if g.mgr, err = alarms.New(cfg.Alarms, cfg.Alarms.StateFilePath(cfg.DataDirOrDefault()), log.With("component", "alarms")); err != nil {
		return nil, err
	}
	g.alarmStage = alarms.NewStage(g.mgr)
	if g.runner, err = rules.NewRunner(cfg.Rules.Actions, g.gate, log.With("component", "rule_actions")); err != nil {
		return nil, err
	}
	// The latest value of every tag, after processing, for the API.
	g.lastValues = latest.New(maxLatestTags)
	if eopts.Processors, eopts.ProcessorNames, err = g.chain(cfg, eopts.Processors, eopts.ProcessorNames, g.runner); err != nil {
		return nil, err
	}
	eopts.Events = g.events // certificate rejections by sources' and sinks' peers
	if g.eng, err = engine.New(eopts); err != nil {
		return nil, err
	}
	g.sinks = eopts.Sinks
	g.loss = newLossWatch(g.eng, g.mgr, log.With("component", "loss_watch"))
	g.flows = flows.New(flows.Options{Status: g.eng.Status, Topology: g.flowTopology, Node: g.node})
	if err := g.loss.define(sinkNames(eopts.Sinks)); err != nil {
		return nil, err
	}
	if c := cfg.WriteCommands; c != nil {
		if g.writeCmds, err = mqttcmd.New(*c, g.gate, g.events, log.With("component", "write_commands")); err != nil {
			return nil, err
		}
	}
	if c := cfg.Alarms.Commands; c != nil {
		if g.alarmCmds, err = alarms.NewCommands(*c, g.mgr, g.events, log.With("component", "alarm_commands")); err != nil {
			return nil, err
		}
	}
	if g.authn, err = buildAuth(cfg, g.events, log); err != nil {
		return nil, err
	}
	// TLS or plain HTTP, decided for the address actually bound (apiserve.go).
	if opts.Listener != nil {
		if g.served, err = prepareAPI(cfg, opts.Listener.Addr(), g.events, log, opts.Stderr); err != nil {
			return nil, err
		}
	}
	g.run = newRunningConfig(cfg, opts.ConfigPath, opts.ConfigData, time.Now())
	if opts.ConfigData == nil {
		// The demo: applies compare with what its shown text decodes to.
		g.run.cfg = g.asText(cfg, g.run.text)
		g.run.boot = g.run.cfg
	}
	// Parsing and building a large configuration (10,000 tags) leaves tens
	// of MB of garbage behind; hand it back to the OS before running for
	// months.
	debug.FreeOSMemory()
	return g, nil
}

// chain is the processor chain: the configured processors, then the
// gateway's own stages. Security events enter before the rules, so a rule
// can raise an alarm on them (weir/_security/auth.login_failed); the
// alarm stage puts the manager's events (rules', operators', loss
// watch's) into the flow to every sink; the latest values come last, so
// they see derived tags and alarm events too. Only the rules are rebuilt
// by a reload: the other stages are the same values in every chain. The
// rules enqueue their actions to runner.
func (g *Gateway) chain(cfg *config.Config, procs []pipeline.Processor, names []string, runner *rules.Runner) ([]pipeline.Processor, []string, error) {
	ruleProc, err := rules.New(cfg.Rules, rules.Deps{Alarms: g.mgr, Actions: runner}, g.log.With("component", "rules"))
	if err != nil {
		return nil, nil, err
	}
	procs = append(procs, g.secStream, ruleProc, g.alarmStage, g.lastValues)
	names = append(names, gatewayStages...)
	return procs, names, nil
}

// wireSinks gives every route the security recorder, and Sparkplug sinks
// the write gate for DCMD/NCMD — only once a policy could allow a write,
// so a node stays read-only by default (and only with the sink's
// commands.trust; untrusted ones are reported).
func (g *Gateway) wireSinks(cfg *config.Config, sinks []engine.SinkSpec) {
	// A tag held back by classification is a security event, once per
	// sink and tag (security.EgressDenied), to the gateway's recorder as it
	// is when the event happens.
	events := security.RecorderFunc(func(ctx context.Context, ev security.Event) { g.events.Record(ctx, ev) })
	for _, s := range sinks {
		if s.Route != nil {
			s.Route.SetEvents(events)
			s.Route.SetDenied(g.deniedSet(s.Name, s.Route.MaxClass()))
		}
	}
	if len(cfg.WriteGate.Policies) == 0 {
		return
	}
	for _, s := range sinks {
		if sp, ok := s.Sink.(*sparkplug.Sink); ok {
			sp.SetWriteGate(g.gate)
			sp.SetRecorder(g.events)
		}
	}
}

// deniedSet is the set of tags reported denied to sink name: the one kept
// since the sink first ran, unless its max_class changed (the denials are
// then under a new policy and reported afresh).
func (g *Gateway) deniedSet(name string, max route.Class) *route.DeniedSet {
	g.deniedMu.Lock()
	defer g.deniedMu.Unlock()
	if g.denied == nil {
		g.denied = map[string]*route.DeniedSet{}
	}
	if d := g.denied[name]; d != nil && d.MaxClass() == max {
		return d
	}
	d := route.NewDeniedSet(max)
	g.denied[name] = d
	return d
}

// pruneDenied drops the sets of sinks no longer running (a sink removed
// and later added back starts afresh, like its counters).
func (g *Gateway) pruneDenied(running []engine.SinkSpec) {
	g.deniedMu.Lock()
	defer g.deniedMu.Unlock()
	for name := range g.denied {
		if !slices.ContainsFunc(running, func(s engine.SinkSpec) bool { return s.Name == name && s.Route != nil }) {
			delete(g.denied, name)
		}
	}
}

func (g *Gateway) wrapSources(srcs []engine.SourceSpec) {
	if g.opts.WrapSource == nil {
		return
	}
	for i := range srcs {
		srcs[i].Source = g.opts.WrapSource(srcs[i].Source)
	}
}

// Engine is the running engine (bench reads its counters and latencies).
func (g *Gateway) Engine() *engine.Engine { return g.eng }

// Run starts every part and runs until ctx is done or one part fails.
// Call it once; the gateway owns the buffers from here.
func (g *Gateway) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return errors.New("gateway: Run called twice")
	}
	g.started = true
	g.mu.Unlock()
	defer g.trail.Close()
	eg, gctx := errgroup.WithContext(ctx)
	g.mu.Lock()
	g.runCtx = gctx
	g.mu.Unlock()
	if err := g.runner.Start(gctx); err != nil {
		g.mu.Lock()
		releaseBuffers(g.sinks)
		g.mu.Unlock()
		closeListener(g.ln)
		return err
	}
	defer func() {
		g.mu.Lock()
		r := g.runner // a reload may have replaced it
		g.mu.Unlock()
		r.Close()
	}()
	g.events.Record(ctx, configAppliedEvent(g.run, g.opts.Actor, g.node, nil))
	for _, ev := range g.opts.Startup {
		g.events.Record(ctx, ev)
	}
	eg.Go(func() error { return g.eng.Run(gctx) })
	g.mu.Lock()
	g.running = true
	g.mu.Unlock()
	close(g.runningCh)
	defer func() {
		g.mu.Lock()
		g.running = false
		g.mu.Unlock()
	}()
	eg.Go(func() error { return g.auditEvents.Run(gctx) })
	eg.Go(func() error { return g.trail.Run(gctx) })
	eg.Go(func() error { return g.gate.Run(gctx) })
	eg.Go(func() error { return g.loss.run(gctx) })
	// One snapshot a second for the data-flow map's rates (bounded ring).
	eg.Go(func() error { return g.flows.Run(gctx) })
	eg.Go(func() error { return g.mgr.Run(gctx) })
	// Stops with the gateway; sends what is queued for syslog within its
	// drain_timeout first.
	eg.Go(func() error { return g.secStream.Run(gctx) })
	// The MQTT command subscribers run as tasks a reload may replace.
	defer g.stopTasks()
	g.mu.Lock()
	if g.writeCmds != nil {
		g.writeTask = g.startTask(g.writeCmds.Run)
	}
	if g.alarmCmds != nil {
		g.alarmTask = g.startTask(g.alarmCmds.Run)
	}
	g.mu.Unlock()
	eg.Go(func() error {
		select {
		case err := <-g.taskErr:
			return err
		case <-gctx.Done():
			return nil
		}
	})
	if g.ln != nil {
		remove := g.serveAPI(gctx, eg)
		defer remove()
	}
	err := eg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Close releases what New opened when Run is never called; after Run it
// does nothing.
func (g *Gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return
	}
	g.started = true
	releaseBuffers(g.sinks)
	closeListener(g.ln)
	g.trail.Close()
}

// serveAPI starts the HTTP API in eg and publishes its address for the
// CLI; the returned function withdraws the address.
func (g *Gateway) serveAPI(ctx context.Context, eg *errgroup.Group) (remove func()) {
	log := g.log.With("component", "api")
	// Clients on this machine (weir alarms) find the API here.
	remove, err := WriteAPIAddr(g.run.cfg.DataDirOrDefault(), g.served.url)
	if err != nil {
		g.log.Warn("api address file not written; weir alarms will need -api", "err", err)
		remove = func() {}
	}
	values := &api.Values{Gate: g.gate, Store: g.lastValues, Audit: g.trail, Log: log}
	alarmAPI := &api.Alarms{Store: g.mgr, Events: g.events, Log: log}
	tokens := &api.Tokens{Store: g.authn.Tokens(), MaxLifetime: g.authn.TokenMaxLifetime(), Events: g.events, Log: log}
	// Always mounted: 503 until a historian sink is configured and open;
	// it follows the sink a reload adds, replaces or removes.
	history := &api.History{Log: log, Store: sinkHistory{g.historian}}
	configAPI := &api.Config{Manager: configManager{g}, Log: log}
	webUI, err := ui.New(ui.Options{Sessions: g.authn, Status: g.eng, Values: g.lastValues, NodeID: g.node, WritePolicy: g.gate.Policy,
		Flows: g.flows, Version: g.opts.Version, Log: g.log.With("component", "ui")})
	if err != nil { // templates that do not parse: a programming error the ui tests catch
		g.log.Error("web UI not served", "err", err)
	}
	srv := api.New(api.Options{Status: withAuditStatus{g.eng, g.trail}, NodeID: g.node, Version: g.opts.Version, Logger: log,
		Auth: g.authn,
		Extra: func(mux *http.ServeMux) {
			values.Mount(mux)
			alarmAPI.Mount(mux)
			tokens.Mount(mux)
			history.Mount(mux)
			configAPI.Mount(mux)
			(&api.WritePolicy{Gate: g.gate}).Mount(mux)
			(&api.AuditVerify{Trail: g.trail, Log: log}).Mount(mux)
			(&api.Flows{Mapper: g.flows}).Mount(mux)
			if webUI != nil {
				webUI.Mount(mux)
			}
		},
		SecurityStats: g.secStream, AuditStats: g.trail, Collectors: []prometheus.Collector{history},
		TLS: g.served.tls, AllowedHosts: g.served.hosts, Limits: g.served.limits, Events: g.events})
	eg.Go(func() error { return srv.Serve(ctx, g.ln) })
	return remove
}

// historian is the current first historian sink (a reload may replace it).
func (g *Gateway) historian() *historian.Sink {
	g.mu.Lock()
	defer g.mu.Unlock()
	return firstHistorian(g.sinks)
}

func closeListener(ln net.Listener) {
	if ln != nil {
		ln.Close()
	}
}

func sinkNames(sinks []engine.SinkSpec) []string {
	var names []string
	for _, s := range sinks {
		names = append(names, s.Name)
	}
	return names
}

// releaseBuffers frees durable buffers opened by Build when the gateway
// fails before its engine took them over.
func releaseBuffers(sinks []engine.SinkSpec) {
	for _, s := range sinks {
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
// device goes through. With no write_policies the gate denies (and
// audits) every attempt.
func buildWriteGate(cfg *config.Config, log *slog.Logger, events security.Recorder) (*writegate.Gate, *audit.Log, error) {
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
	return gate, trail, nil
}

// registerWriters routes writes to every tag of s to s, when s can write.
func (g *Gateway) registerWriters(s engine.SourceSpec) error {
	w, ok := s.Source.(writegate.Writer)
	if !ok {
		return nil
	}
	lister, ok := s.Source.(pipeline.TagLister)
	if !ok {
		return nil
	}
	var done []string
	for _, t := range lister.Tags() {
		if err := g.gate.Register(t.Path, w); err != nil {
			for _, p := range done {
				g.gate.Unregister(p)
			}
			return fmt.Errorf("write gate: source %s: %w", s.Name, err)
		}
		done = append(done, t.Path)
	}
	g.writers[s.Name] = done
	return nil
}

// unregisterWriters withdraws what registerWriters registered for name.
func (g *Gateway) unregisterWriters(name string) {
	for _, p := range g.writers[name] {
		g.gate.Unregister(p)
	}
	delete(g.writers, name)
}
