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
	"github.com/weir-edge/weir/processors/deadband"
	"github.com/weir-edge/weir/processors/derive"
	"github.com/weir-edge/weir/processors/rate"
	"github.com/weir-edge/weir/processors/scale"
	"github.com/weir-edge/weir/processors/window"
	"github.com/weir-edge/weir/sinks/historian"
	httpsink "github.com/weir-edge/weir/sinks/http"
	"github.com/weir-edge/weir/sinks/kafka"
	"github.com/weir-edge/weir/sinks/mqtt"
	natssink "github.com/weir-edge/weir/sinks/nats"
	"github.com/weir-edge/weir/sinks/postgres"
	"github.com/weir-edge/weir/sinks/sparkplug"
	"github.com/weir-edge/weir/sources/modbus"
	mqttsource "github.com/weir-edge/weir/sources/mqtt"
	"github.com/weir-edge/weir/sources/opcua"
)

// Build turns a validated Config into engine options: every component is
// constructed (no network I/O happens here) and pre-scoped loggers are
// handed out.
func (c *Config) Build(log *slog.Logger) (engine.Options, error) {
	opts := engine.Options{
		DrainTimeout: c.Engine.DrainTimeout,
		Logger:       log,
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	for _, s := range c.Sources {
		l := log.With("component", "source", "name", s.Name)
		var src pipeline.Source
		var err error
		switch {
		case s.Modbus != nil:
			src, err = modbus.New(*s.Modbus, l)
		case s.OPCUA != nil:
			src, err = opcua.New(*s.OPCUA, l)
		case s.MQTT != nil:
			src, err = mqttsource.New(*s.MQTT, l)
		default:
			err = fmt.Errorf("no protocol block")
		}
		if err != nil {
			return engine.Options{}, fmt.Errorf("source %s: %w", s.Name, err)
		}
		opts.Sources = append(opts.Sources, engine.SourceSpec{Name: s.Name, Source: src})
	}
	for _, p := range c.Processors {
		l := log.With("component", "processor", "name", p.Name)
		var proc pipeline.Processor
		var err error
		switch {
		case p.Scale != nil:
			proc, err = scale.New(*p.Scale, l)
		case p.Deadband != nil:
			proc, err = deadband.New(*p.Deadband, l)
		case p.Rate != nil:
			proc, err = rate.New(*p.Rate, l)
		case p.Window != nil:
			proc, err = window.New(*p.Window, l)
		case p.Derive != nil:
			proc, err = derive.New(*p.Derive, l)
		default:
			err = fmt.Errorf("no type block")
		}
		if err != nil {
			return engine.Options{}, fmt.Errorf("processor %s: %w", p.Name, err)
		}
		opts.Processors = append(opts.Processors, proc)
		opts.ProcessorNames = append(opts.ProcessorNames, p.Name)
	}
	node := c.NodeID()
	for _, s := range c.Sinks {
		l := log.With("component", "sink", "name", s.Name)
		batch := s.BatchSize
		if batch == 0 {
			batch = DefaultBatchSize
		}
		buf, err := c.openBuffer(s, l)
		if err != nil {
			releaseAll(opts.Sinks)
			return engine.Options{}, fmt.Errorf("sink %s: buffer: %w", s.Name, err)
		}
		spec := engine.SinkSpec{Name: s.Name, Buffer: buf, BatchSize: batch}
		if d, ok := buf.(*durable.Buffer); ok {
			// Beside a durable buffer, a durable dead-letter store;
			// a memory buffer's sink drops refused samples, counted.
			dl, err := durable.OpenDeadLetters(durable.DeadLetterDir(d.Dir()), s.Buffer.MinFreeBytes, l.With("buffer", "dead_letters"))
			if err != nil {
				releaseAll(append(opts.Sinks, spec))
				return engine.Options{}, fmt.Errorf("sink %s: dead letters: %w", s.Name, err)
			}
			spec.DeadLetters = dl
		}
		switch {
		// Every sink names the node the same way unless its block says
		// otherwise: node.id, default the host name (NodeID).
		case s.MQTT != nil:
			sc := *s.MQTT
			sc.SetNode(node)
			spec.Sink, err = mqtt.New(sc, l)
		case s.HTTP != nil:
			sc := *s.HTTP
			sc.SetNode(node)
			spec.Sink, err = httpsink.New(sc, l)
		case s.Postgres != nil:
			sc := *s.Postgres
			sc.SetNode(node)
			spec.Sink, err = postgres.New(sc, l)
		case s.NATS != nil:
			sc := *s.NATS
			sc.SetNode(node)
			spec.Sink, err = natssink.New(sc, l)
		case s.Kafka != nil:
			sc := *s.Kafka
			sc.SetNode(node)
			spec.Sink, err = kafka.New(sc, l)
		case s.Sparkplug != nil:
			sc := *s.Sparkplug
			sc.SetNode(node)
			if sc.DataDir == "" {
				sc.DataDir = c.dataDir()
			}
			spec.Sink, err = sparkplug.New(sc, l)
		case s.Historian != nil:
			sc := *s.Historian
			if sc.DataDir == "" {
				sc.DataDir = c.dataDir()
			}
			spec.Sink, err = historian.New(sc, l)
		default:
			return engine.Options{}, fmt.Errorf("sink %s: no protocol block", s.Name)
		}
		if err != nil {
			releaseAll(append(opts.Sinks, spec))
			return engine.Options{}, fmt.Errorf("sink %s: %w", s.Name, err)
		}
		opts.Sinks = append(opts.Sinks, spec)
	}
	return opts, nil
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

// BuildSource builds the source named name (no I/O), for hot reload.
//
// TODO(reload): implemented by the reload work (one row per kind).
func (c *Config) BuildSource(name string, log *slog.Logger) (engine.SourceSpec, error) {
	return engine.SourceSpec{}, fmt.Errorf("source %s: build by name: not implemented", name)
}

// BuildSink builds the sink named name and opens its buffer, for hot
// reload.
//
// TODO(reload): implemented by the reload work (one row per kind).
func (c *Config) BuildSink(name string, log *slog.Logger) (engine.SinkSpec, error) {
	return engine.SinkSpec{}, fmt.Errorf("sink %s: build by name: not implemented", name)
}

// BuildProcessors builds the configured processors chain (no I/O), for
// hot reload.
//
// TODO(reload): implemented by the reload work (one row per kind).
func (c *Config) BuildProcessors(log *slog.Logger) ([]pipeline.Processor, []string, error) {
	return nil, nil, fmt.Errorf("processors: build: not implemented")
}
