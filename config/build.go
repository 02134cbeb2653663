package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/route"
)

// Build turns a validated Config into engine options: every component is
// constructed (no network I/O happens here; sinks' buffers are opened) and
// pre-scoped loggers are handed out.
func (c *Config) Build(log *slog.Logger) (engine.Options, error) {
	opts := engine.Options{
		DrainTimeout: c.Engine.DrainTimeout,
		Logger:       log,
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	for i := range c.Sources {
		spec, err := c.buildSource(&c.Sources[i], log)
		if err != nil {
			return engine.Options{}, err
		}
		opts.Sources = append(opts.Sources, spec)
	}
	procs, names, err := c.BuildProcessors(log)
	if err != nil {
		return engine.Options{}, err
	}
	opts.Processors, opts.ProcessorNames = procs, names
	for i := range c.Sinks {
		spec, err := c.buildSink(&c.Sinks[i], log, true)
		if err != nil {
			releaseAll(opts.Sinks)
			return engine.Options{}, err
		}
		opts.Sinks = append(opts.Sinks, spec)
	}
	return opts, nil
}

// BuildSource builds the source named name (no I/O), for hot reload.
func (c *Config) BuildSource(name string, log *slog.Logger) (engine.SourceSpec, error) {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return c.buildSource(&c.Sources[i], log)
		}
	}
	return engine.SourceSpec{}, fmt.Errorf("source %s: not in the configuration", name)
}

// BuildSink builds the sink named name and opens its buffer and
// dead-letter store exactly as Build does, for hot reload of a sink that
// is new. A changed sink's durable buffer is still held by the running
// sink: build it with BuildSinkDeferred.
func (c *Config) BuildSink(name string, log *slog.Logger) (engine.SinkSpec, error) {
	s, err := c.sink(name)
	if err != nil {
		return engine.SinkSpec{}, err
	}
	return c.buildSink(s, log, true)
}

// BuildSinkDeferred builds the sink named name like BuildSink but leaves
// its buffer closed: the spec's OpenBuffer opens it (as Build would) when
// engine.Apply adds the sink, after the sink it replaces released the
// same directory.
func (c *Config) BuildSinkDeferred(name string, log *slog.Logger) (engine.SinkSpec, error) {
	s, err := c.sink(name)
	if err != nil {
		return engine.SinkSpec{}, err
	}
	return c.buildSink(s, log, false)
}

func (c *Config) sink(name string) (*Sink, error) {
	for i := range c.Sinks {
		if c.Sinks[i].Name == name {
			return &c.Sinks[i], nil
		}
	}
	return nil, fmt.Errorf("sink %s: not in the configuration", name)
}

// BuildProcessors builds the configured processors chain (no I/O) and
// their names, for Build and hot reload.
func (c *Config) BuildProcessors(log *slog.Logger) ([]pipeline.Processor, []string, error) {
	var procs []pipeline.Processor
	var names []string
	for i := range c.Processors {
		p := &c.Processors[i]
		env := buildEnv{log: log.With("component", "processor", "name", p.Name)}
		proc, err := buildKind(processorRows, p, env, "type")
		if err != nil {
			return nil, nil, fmt.Errorf("processor %s: %w", p.Name, err)
		}
		procs = append(procs, proc)
		names = append(names, p.Name)
	}
	return procs, names, nil
}

func (c *Config) buildSource(s *Source, log *slog.Logger) (engine.SourceSpec, error) {
	env := buildEnv{log: log.With("component", "source", "name", s.Name)}
	src, err := buildKind(sourceRows, s, env, "protocol")
	if err != nil {
		return engine.SourceSpec{}, fmt.Errorf("source %s: %w", s.Name, err)
	}
	return engine.SourceSpec{Name: s.Name, Source: src}, nil
}

// buildSink builds s; open says whether to open its buffer now or leave
// that to the spec's OpenBuffer.
func (c *Config) buildSink(s *Sink, log *slog.Logger, open bool) (engine.SinkSpec, error) {
	l := log.With("component", "sink", "name", s.Name)
	batch := s.BatchSize
	if batch == 0 {
		batch = DefaultBatchSize
	}
	spec := engine.SinkSpec{Name: s.Name, BatchSize: batch}
	var err error
	if spec.Route, err = c.buildRoute(s, log); err != nil {
		return engine.SinkSpec{}, err
	}
	spec.Sink, err = buildKind(sinkRows, s, buildEnv{log: l, node: c.NodeID(), dataDir: c.dataDir()}, "protocol")
	if err != nil {
		return engine.SinkSpec{}, fmt.Errorf("sink %s: %w", s.Name, err)
	}
	blk := *s // OpenBuffer may run later: it must not see later edits
	spec.OpenBuffer = func() (buffer.Buffer, engine.DeadLetters, error) { return c.openBuffers(&blk, l) }
	if open {
		if spec.Buffer, spec.DeadLetters, err = spec.OpenBuffer(); err != nil {
			return engine.SinkSpec{}, err
		}
		spec.OpenBuffer = nil
	}
	return spec, nil
}

// buildRoute builds the sink's route: every sink has one, so the class
// boundary holds for a sink without a route block too (it then selects
// every tag up to its max_class, unchanged). Its processors are built from
// the same rows as the shared chain's and named "sink/<sink>/<name>".
// Security events are wired by the caller (route.Route.SetEvents).
func (c *Config) buildRoute(s *Sink, log *slog.Logger) (*route.Route, error) {
	cl, err := c.Classifier()
	if err != nil {
		return nil, fmt.Errorf("classification: %w", err)
	}
	maxClass, err := route.ParseClass(s.MaxClass, route.DefaultClass)
	if err != nil {
		return nil, fmt.Errorf("sink %s: max_class: %w", s.Name, err)
	}
	o := route.Options{Sink: s.Name, MaxClass: maxClass, Classifier: cl}
	if r := s.Route; r != nil {
		o.Selection = r.Selection
		for i := range r.Processors {
			p := &r.Processors[i]
			name := "sink/" + s.Name + "/" + p.Name
			env := buildEnv{log: log.With("component", "processor", "name", name)}
			proc, err := buildKind(processorRows, p, env, "type")
			if err != nil {
				return nil, fmt.Errorf("sink %s: route: processor %s: %w", s.Name, p.Name, err)
			}
			o.Processors = append(o.Processors, proc)
			o.ProcessorNames = append(o.ProcessorNames, name)
		}
	}
	rt, err := route.New(o)
	if err != nil {
		return nil, err
	}
	return rt, nil
}

// openBuffers opens the sink's buffer and, beside a durable buffer, a
// durable dead-letter store; a memory buffer's sink drops refused samples,
// counted.
func (c *Config) openBuffers(s *Sink, l *slog.Logger) (buffer.Buffer, engine.DeadLetters, error) {
	buf, err := c.openBuffer(*s, l)
	if err != nil {
		return nil, nil, fmt.Errorf("sink %s: buffer: %w", s.Name, err)
	}
	d, ok := buf.(*durable.Buffer)
	if !ok {
		return buf, nil, nil
	}
	dl, err := durable.OpenDeadLetters(durable.DeadLetterDir(d.Dir()), s.Buffer.MinFreeBytes, l.With("buffer", "dead_letters"))
	if err != nil {
		_ = d.Release()
		return nil, nil, fmt.Errorf("sink %s: dead letters: %w", s.Name, err)
	}
	return buf, dl, nil
}

// DataDirOrDefault is the node's state directory.
func (c *Config) DataDirOrDefault() string { return c.dataDir() }

// AuditFile is where the write audit trail lives.
func (c *Config) AuditFile() string {
	if c.Audit.File != "" {
		return c.Audit.File
	}
	return filepath.Join(c.dataDir(), "audit", "writes.jsonl")
}

// AuditCheckpointFile is where the audit trail's signed head is kept.
func (c *Config) AuditCheckpointFile() string {
	if c.Audit.CheckpointFile != "" {
		return c.Audit.CheckpointFile
	}
	return audit.CheckpointPath(c.dataDir())
}

// dataDir is the node's state directory.
func (c *Config) dataDir() string {
	if c.DataDir == "" {
		return DefaultDataDir
	}
	return c.DataDir
}

// BufferDir is where a sink's durable buffer lives.
func (c *Config) BufferDir(sink string) string {
	return filepath.Join(c.dataDir(), "buffers", sink)
}

// openBuffer opens the sink's buffer: a durable store (recovering what a
// previous run left) or a memory ring.
func (c *Config) openBuffer(s Sink, log *slog.Logger) (buffer.Buffer, error) {
	if s.Buffer.IsMemory() {
		capacity := s.Buffer.Capacity
		if capacity == 0 {
			capacity = DefaultBufferCapacity
		}
		return buffer.NewMemory(capacity, s.Buffer.Policy), nil
	}
	dc := s.Buffer.Config
	dc.Type = BufferDisk
	if dc.Dir == "" {
		dc.Dir = c.BufferDir(s.Name)
	}
	if err := os.MkdirAll(filepath.Dir(dc.Dir), 0o700); err != nil {
		return nil, err
	}
	return durable.Open(dc, log.With("buffer", "disk"))
}

// releaseAll frees the buffers opened so far when building fails half way.
func releaseAll(sinks []engine.SinkSpec) {
	for _, s := range sinks {
		if r, ok := s.Buffer.(pipeline.Releaser); ok {
			_ = r.Release()
		}
		if r, ok := s.DeadLetters.(pipeline.Releaser); ok {
			_ = r.Release()
		}
	}
}
