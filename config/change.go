package config

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/weir-edge/weir/engine"
)

// BuildChange turns d, the Diff from the running configuration to c
// (Compare(running, c)), into the engine.Change that applies it: removed
// and changed sources and sinks are removed, added and changed ones built
// from c. No buffer is opened here: the engine opens them (SinkSpec.
// OpenBuffer) once the sinks they replace have released theirs, and a
// changed sink whose buffer block is the same takes the running buffer
// over (Change.KeepBuffers). With d.Processors the configured processors
// are built; a caller that runs more in the chain (rules, alarms) adds
// its own before engine.Apply. A changed classification (in d.Live) is
// handed to every route (Change.Classification). The other keys in d.Live
// and d.Restart are the caller's.
func (c *Config) BuildChange(d Diff, log *slog.Logger) (engine.Change, error) {
	var ch engine.Change
	ch.RemoveSources = append(slices.Clone(d.Sources.Removed), d.Sources.Changed...)
	for _, name := range append(slices.Clone(d.Sources.Added), d.Sources.Changed...) {
		spec, err := c.BuildSource(name, log)
		if err != nil {
			return engine.Change{}, err
		}
		ch.AddSources = append(ch.AddSources, spec)
	}
	ch.RemoveSinks = append(slices.Clone(d.Sinks.Removed), d.Sinks.Changed...)
	ch.KeepBuffers = slices.Clone(d.KeepBuffers)
	for _, name := range append(slices.Clone(d.Sinks.Added), d.Sinks.Changed...) {
		spec, err := c.BuildSinkDeferred(name, log)
		if err != nil {
			return engine.Change{}, err
		}
		if slices.Contains(d.KeepBuffers, name) {
			spec.OpenBuffer = nil
		}
		ch.AddSinks = append(ch.AddSinks, spec)
	}
	if slices.Contains(d.Live, "classification") || d.Processors {
		// Applied to every route at the engine's cut; no sink restarts.
		// A new shared chain may rename paths differently, so the rules
		// are carried through it again (Config.Classifier).
		cl, err := c.Classifier()
		if err != nil {
			return engine.Change{}, fmt.Errorf("classification: %w", err)
		}
		ch.Classification = &engine.Classification{Classifier: cl}
	}
	if d.Processors {
		procs, names, err := c.BuildProcessors(log)
		if err != nil {
			return engine.Change{}, err
		}
		ch.ReplaceProcessors, ch.Processors, ch.ProcessorNames = true, procs, names
	}
	return ch, nil
}
