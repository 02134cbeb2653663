package config

import (
	"fmt"
	"log/slog"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	httpsink "github.com/weir-edge/weir/sinks/http"
	"github.com/weir-edge/weir/sinks/kafka"
	"github.com/weir-edge/weir/sinks/mqtt"
	natssink "github.com/weir-edge/weir/sinks/nats"
	"github.com/weir-edge/weir/sinks/postgres"
	"github.com/weir-edge/weir/sources/modbus"
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
		switch {
		case s.Modbus != nil:
			src, err := modbus.New(*s.Modbus, l)
			if err != nil {
				return engine.Options{}, fmt.Errorf("source %s: %w", s.Name, err)
			}
			opts.Sources = append(opts.Sources, engine.SourceSpec{Name: s.Name, Source: src})
		default:
			return engine.Options{}, fmt.Errorf("source %s: no protocol block", s.Name)
		}
	}
	for _, s := range c.Sinks {
		l := log.With("component", "sink", "name", s.Name)
		capacity := s.Buffer.Capacity
		if capacity == 0 {
			capacity = DefaultBufferCapacity
		}
		batch := s.BatchSize
		if batch == 0 {
			batch = DefaultBatchSize
		}
		spec := engine.SinkSpec{Name: s.Name, Buffer: buffer.NewMemory(capacity, s.Buffer.Policy), BatchSize: batch}
		var err error
		switch {
		case s.MQTT != nil:
			spec.Sink, err = mqtt.New(*s.MQTT, l)
		case s.HTTP != nil:
			spec.Sink, err = httpsink.New(*s.HTTP, l)
		case s.Postgres != nil:
			spec.Sink, err = postgres.New(*s.Postgres, l)
		case s.NATS != nil:
			spec.Sink, err = natssink.New(*s.NATS, l)
		case s.Kafka != nil:
			spec.Sink, err = kafka.New(*s.Kafka, l)
		default:
			return engine.Options{}, fmt.Errorf("sink %s: no protocol block", s.Name)
		}
		if err != nil {
			return engine.Options{}, fmt.Errorf("sink %s: %w", s.Name, err)
		}
		opts.Sinks = append(opts.Sinks, spec)
	}
	return opts, nil
}
