package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/rules"
	"github.com/weir-edge/weir/writegate"
)

// Sentinel errors of Apply and Reload (the api package's, so that its
// handlers and errors.Is agree).
var (
	// ErrInvalid: the new configuration has errors; nothing changed.
	ErrInvalid = api.ErrConfigInvalid
	// ErrNoFile: Reload of a gateway that runs from no file (the demo).
	ErrNoFile = api.ErrNoConfigFile
	// ErrNotRunning: Apply before Run started the engine, or after it ended.
	ErrNotRunning = errors.New("gateway: not running")
	// ErrNotPersistable: WriteFile asked, and the file cannot be written.
	ErrNotPersistable = api.ErrNotPersistable
)

// ApplyInfo says who asks for an apply and with what text.
type ApplyInfo struct {
	// Actor is recorded in config.applied: "api:alice", "cli", "sighup".
	Actor string
	// Data is the exact text of the new configuration, hashed and diffed;
	// nil: the configuration as YAML.
	Data []byte
	// WriteFile rewrites the gateway's configuration file with Data
	// (atomically, the old one kept as <file>.prev) before applying, so a
	// restart runs what the API applied. Ignored without a file. Checked
	// before anything is applied: ErrNotPersistable when it cannot be.
	WriteFile bool
	// Transient: the caller chose not to write the file (persist=false);
	// the change runs until the next restart, and the result and the
	// audit say "not persisted". Ignored without a file.
	Transient bool
}

// Applied is the outcome of Apply, ApplyYAML, Reload and Check.
type Applied struct {
	// Problems are every error and warning found (ErrInvalid when any is
	// an error).
	Problems config.Problems
	SHA256   string
	Diff     config.Diff
	// Summary is Diff in one line, for logs, the audit trail and the UI.
	Summary string
	// Text is a unified line diff from the running text to the new one.
	Text string
	// Restart lists changed keys that wait for a restart.
	Restart []string
	// Applied is true when the change runs.
	Applied bool
	// NotPersisted: applied, and the file still holds the old text.
	NotPersisted bool
}

// Check validates data as a whole configuration file and compares it with
// the running one; nothing is applied.
func (g *Gateway) Check(data []byte) (Applied, *config.Config) {
	cfg, res := g.parse(data)
	if cfg == nil {
		return res, nil
	}
	g.mu.Lock()
	running := g.run
	g.mu.Unlock()
	g.compare(&res, running, cfg, data)
	return res, cfg
}

// parse inspects data as the running file would be (every problem at
// file:line, secrets and files it names checked) and applies the command
// line's overrides; the Config is nil when data has errors.
func (g *Gateway) parse(data []byte) (*config.Config, Applied) {
	g.mu.Lock()
	name := g.run.path
	g.mu.Unlock()
	if name == "" {
		name = "weir.yaml"
	}
	cfg, ps := config.Inspect(name, data, config.Options{})
	res := Applied{Problems: ps, SHA256: sha256Hex(data)}
	if cfg != nil && g.opts.Adjust != nil {
		g.opts.Adjust(cfg)
	}
	return cfg, res
}

// compare fills res with what changes from running to cfg. The very
// text that runs is no change at all, whatever its decoding (the demo's
// text is its configuration marshalled, which does not decode back to
// the same values). Restart lists the keys that differ from the
// configuration the process booted with — what really runs for them —
// so a change reverted is no longer waiting.
func (g *Gateway) compare(res *Applied, running runningConfig, cfg *config.Config, data []byte) {
	if !bytes.Equal(data, running.text) {
		res.Diff = config.Compare(running.cfg, cfg)
		sparkplugRewire(&res.Diff, running.cfg, cfg)
	}
	res.Restart = bootRestart(running.boot, cfg)
	res.Summary = summary(res.Diff, res.Restart, running.cfg, cfg)
	res.Text = UnifiedDiff("running", "new", running.text, data)
}

// bootRestart lists the restart-only keys of cfg that differ from boot,
// the configuration the process started with.
func bootRestart(boot, cfg *config.Config) []string {
	return restartKeys(config.Compare(boot, cfg), boot, cfg)
}

// summary is d.String() ("no changes" when empty), with restart as the
// keys waiting for a restart; a live key whose only change is a restart
// key inside it (alarms.state_file) is not also called live.
func summary(d config.Diff, restart []string, old, cfg *config.Config) string {
	live := slices.DeleteFunc(slices.Clone(d.Live), func(k string) bool { return onlyRestartChanged(k, old, cfg) })
	if len(live) < len(d.Live) && d.Processors {
		// The chain is rebuilt for the live keys left, or processors.
		d.Processors = !reflect.DeepEqual(old.Processors, cfg.Processors) ||
			slices.ContainsFunc(live, func(k string) bool { return k == "rules" || k == "rule_actions" || k == "alarms" })
	}
	d.Live, d.Restart = live, restart
	return d.String()
}

// onlyRestartChanged reports whether the live key k changed from old to
// cfg only in its restart-only part.
func onlyRestartChanged(k string, old, cfg *config.Config) bool {
	switch k {
	case "alarms":
		a := old.Alarms
		a.StateFile = cfg.Alarms.StateFile
		return reflect.DeepEqual(a, cfg.Alarms)
	case "security_events":
		e := old.SecurityEvents
		e.Syslog = cfg.SecurityEvents.Syslog
		return reflect.DeepEqual(e, cfg.SecurityEvents)
	}
	return false
}

// ApplyYAML validates data and applies it. Invalid: ErrInvalid with every
// problem in the result, recorded as a refused config.applied; the
// running configuration stays.
func (g *Gateway) ApplyYAML(ctx context.Context, data []byte, info ApplyInfo) (Applied, error) {
	cfg, res := g.parse(data)
	if cfg == nil {
		g.mu.Lock()
		obj := g.run.object()
		g.mu.Unlock()
		n := res.Problems.Errors()
		why := fmt.Sprintf("%d error%s", n, plural(n))
		if len(res.Problems) > 0 {
			why += "; first: " + res.Problems[0].Error()
		}
		g.events.Record(ctx, configRefusedEvent(obj, info.Actor, res.SHA256, why))
		g.log.Warn("configuration refused", "actor", info.Actor, "errors", n, "err", res.Problems)
		return res, fmt.Errorf("%w: %d error%s", ErrInvalid, n, plural(n))
	}
	info.Data = data
	out, err := g.Apply(ctx, cfg, info)
	out.Problems = res.Problems // the warnings
	return out, err
}

// Reload re-reads the gateway's configuration file and applies it.
func (g *Gateway) Reload(ctx context.Context, actor string) (Applied, error) {
	g.mu.Lock()
	path := g.run.path
	g.mu.Unlock()
	if path == "" {
		return Applied{}, ErrNoFile
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Applied{}, fmt.Errorf("reload: %w", err)
	}
	if len(data) > config.MaxFileSize {
		return Applied{}, fmt.Errorf("reload: %s is larger than %d bytes", path, config.MaxFileSize)
	}
	return g.ApplyYAML(ctx, data, ApplyInfo{Actor: actor})
}

// Reapply applies the running text again: what a gateway from no file
// (the demo) does on SIGHUP — no changes, but logged and audited like
// any apply, so a reload signal neither kills it nor goes unseen.
func (g *Gateway) Reapply(ctx context.Context, actor string) (Applied, error) {
	g.mu.Lock()
	data := g.run.text
	g.mu.Unlock()
	return g.ApplyYAML(ctx, data, ApplyInfo{Actor: actor})
}

// Apply changes the running gateway to cfg as a diff: unchanged sources
// and sinks keep running untouched (connections, sessions, buffers); added
// and changed ones are built, changed and removed ones stopped (a removed
// sink's durable buffer stays on disk); the processor chain is rebuilt
// when processors or rules changed — keeping the alarm manager and the
// latest values, so alarm states and values survive. Keys that need a
// restart are not applied: they are returned in Restart and logged.
// Applies are serialised; on error the running configuration stays.
func (g *Gateway) Apply(ctx context.Context, cfg *config.Config, info ApplyInfo) (Applied, error) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	if g.opts.Adjust != nil {
		g.opts.Adjust(cfg)
	}
	g.mu.Lock()
	running, isRunning := g.run, g.running
	g.mu.Unlock()
	data := info.Data
	if data == nil {
		data = newRunningConfig(cfg, "", nil, time.Time{}).text
	}
	res := Applied{SHA256: sha256Hex(data)}
	refuse := func(err error) (Applied, error) {
		g.events.Record(ctx, configRefusedEvent(running.object(), info.Actor, res.SHA256, err.Error()))
		g.log.Error("configuration not applied", "actor", info.Actor, "err", err)
		return res, err
	}
	if !isRunning || !g.waitEngine(ctx) {
		return refuse(ErrNotRunning)
	}
	if err := cfg.Validate(); err != nil {
		return refuse(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	g.compare(&res, running, cfg, data)
	if info.WriteFile && running.path != "" {
		// Before anything changes: a file that cannot be written is the
		// user's to solve, not a half-done apply.
		if err := checkWritable(running.path); err != nil {
			return refuse(notPersistable(running.path, err))
		}
		restore, err := replaceFile(running.path, data)
		if err != nil {
			return refuse(notPersistable(running.path, err))
		}
		defer func() {
			if !res.Applied {
				restore()
			}
		}()
	}
	plan, err := g.prepareLive(cfg, res.Diff)
	if err != nil {
		return refuse(err)
	}
	changeErr := g.change(ctx, cfg, res.Diff, g.actionRunner(plan))
	if changeErr != nil && !errors.Is(changeErr, errPartial) {
		plan.abort()
		return refuse(changeErr)
	}
	res.Applied = true
	res.NotPersisted = info.Transient && !info.WriteFile && running.path != ""
	if err := g.commitLive(ctx, running.cfg, cfg, res.Diff, plan); err != nil {
		changeErr = errors.Join(changeErr, err)
	}
	next := newRunningConfig(cfg, running.path, data, time.Now())
	next.boot = running.boot
	g.mu.Lock()
	g.run = next
	g.mu.Unlock()
	g.events.Record(ctx, configAppliedEvent(next, info.Actor, g.node, &res))
	g.log.Info("configuration applied", "actor", info.Actor, "sha256", res.SHA256, "changes", res.Summary)
	if len(res.Restart) > 0 {
		g.log.Warn("configuration keys changed that take effect only at a restart", "keys", strings.Join(res.Restart, ","))
	}
	if changeErr != nil {
		g.log.Error("configuration applied in part", "err", changeErr)
	}
	return res, changeErr
}

// change builds what d adds or changes (config.BuildChange: no buffer is
// opened before the engine's cut; a changed sink with the same buffer
// block hands its buffer on), puts the gateway's own stages around a
// rebuilt chain and hands it to the engine.
func (g *Gateway) change(ctx context.Context, cfg *config.Config, d config.Diff, runner *rules.Runner) error {
	ch, err := cfg.BuildChange(d, g.log)
	if err != nil {
		return err
	}
	g.wrapSources(ch.AddSources)
	if ch.ReplaceProcessors {
		if ch.Processors, ch.ProcessorNames, err = g.chain(cfg, ch.Processors, ch.ProcessorNames, runner); err != nil {
			return err
		}
	}
	g.wireSinks(cfg, ch.AddSinks)
	return g.applyChange(ctx, ch)
}

// applyChange hands ch to the engine and keeps the write gate, the sink
// list and the data-loss alarms in step with it.
func (g *Gateway) applyChange(ctx context.Context, ch engine.Change) error {
	if ch.Empty() {
		return nil
	}
	// Writes to a source being removed must not reach it once it stops.
	old := map[string][]string{}
	for _, name := range ch.RemoveSources {
		old[name] = g.writers[name]
		g.unregisterWriters(name)
	}
	err := g.eng.Apply(ctx, ch)
	if err != nil && g.changeStood(ch) {
		// The engine applied all but a replaced sink whose buffer did not
		// open: keep the gateway in step, and say what is missing.
		g.afterChange(ch)
		return fmt.Errorf("%w: %w", errPartial, err)
	}
	if err != nil {
		releaseBuffers(ch.AddSinks)
		for name, prefixes := range old { // nothing changed: route them back
			if w, ok := g.sources[name].(writegate.Writer); ok {
				for _, p := range prefixes {
					_ = g.gate.Register(p, w)
				}
				g.writers[name] = prefixes
			}
		}
		return fmt.Errorf("engine: %w", err)
	}
	g.afterChange(ch)
	return nil
}

// errPartial marks an apply that stands except for what its error names.
var errPartial = errors.New("applied in part")

// changeStood reports whether the engine runs ch (after an error from
// Apply): a source or sink it removed is gone, or one it added runs.
func (g *Gateway) changeStood(ch engine.Change) bool {
	running := map[string]bool{}
	for _, c := range g.eng.Status().Components {
		running[c.Kind+"/"+c.Name] = true
	}
	for _, n := range ch.RemoveSources {
		if !running["source/"+n] {
			return true
		}
	}
	for _, s := range ch.AddSources {
		if running["source/"+s.Name] {
			return true
		}
	}
	for _, n := range ch.RemoveSinks {
		if !running["sink/"+n] {
			return true
		}
	}
	return false
}

// afterChange brings the write gate, the sink list and the data-loss
// alarms in step with a change the engine runs.
func (g *Gateway) afterChange(ch engine.Change) {
	for _, s := range ch.AddSources {
		if err := g.registerWriters(s); err != nil {
			// The data flows; only writes to it are refused (no route).
			g.log.Error("source added without writes", "source", s.Name, "err", err)
		}
	}
	for _, name := range ch.RemoveSources {
		delete(g.sources, name)
	}
	for _, s := range ch.AddSources {
		g.sources[s.Name] = s.Source
	}
	g.mu.Lock()
	g.sinks = slices.DeleteFunc(g.sinks, func(s engine.SinkSpec) bool { return slices.Contains(ch.RemoveSinks, s.Name) })
	g.sinks = append(g.sinks, ch.AddSinks...)
	running := slices.Clone(g.sinks)
	g.mu.Unlock()
	g.pruneDenied(running)
	if err := g.loss.define(sinkNames(ch.AddSinks)); err != nil {
		g.log.Error("data-loss alarm not defined", "err", err)
	}
}

// waitEngine waits, while Run runs and ctx lasts, for the engine to have
// started (Run starts it in a goroutine: an apply right after Run would
// otherwise find it not running yet). False when it will not run.
func (g *Gateway) waitEngine(ctx context.Context) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !g.eng.Running() {
		g.mu.Lock()
		running := g.running
		g.mu.Unlock()
		if !running {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// replaceFile writes data to path atomically, keeping the old content as
// path.prev; restore puts the old content back.
func replaceFile(path string, data []byte) (restore func(), err error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	prev := path + ".prev"
	if err := WriteFileAtomic(prev, old, mode); err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(path, data, mode); err != nil {
		return nil, err
	}
	return func() { _ = WriteFileAtomic(path, old, mode) }, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
