package config

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/deadband"
	"github.com/weir-edge/weir/processors/derive"
	"github.com/weir-edge/weir/processors/downsample"
	"github.com/weir-edge/weir/processors/rate"
	"github.com/weir-edge/weir/processors/rename"
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

// The component kinds, one row each: the YAML key of the block, where the
// block sits in the component's struct, and its constructor. Validate,
// Build, BuildSource/BuildSink/BuildProcessors and the error messages all
// read these tables, so a new connector is its package, its block field
// in Source, Processor or Sink (strict decoding needs the field) and one
// line here; TestKindRowsMatchFields fails when the two disagree.
//
// The order is the order the kinds are listed in messages.
var (
	sourceRows = []kindRow[Source, pipeline.Source]{
		sourceRow("modbus", func(s *Source) *modbus.Config { return s.Modbus }, modbus.New),
		sourceRow("opcua", func(s *Source) *opcua.Config { return s.OPCUA }, opcua.New),
		sourceRow("mqtt", func(s *Source) *mqttsource.Config { return s.MQTT }, mqttsource.New),
	}
	processorRows = []kindRow[Processor, pipeline.Processor]{
		processorRow("scale", func(p *Processor) *scale.Config { return p.Scale }, scale.New),
		processorRow("deadband", func(p *Processor) *deadband.Config { return p.Deadband }, deadband.New),
		processorRow("rate", func(p *Processor) *rate.Config { return p.Rate }, rate.New),
		processorRow("window", func(p *Processor) *window.Config { return p.Window }, window.New),
		processorRow("derive", func(p *Processor) *derive.Config { return p.Derive }, derive.New),
		processorRow("rename", func(p *Processor) *rename.Config { return p.Rename }, rename.New),
		processorRow("downsample", func(p *Processor) *downsample.Config { return p.Downsample }, downsample.New),
	}
	sinkRows = []kindRow[Sink, pipeline.Sink]{
		sinkRow("mqtt", func(s *Sink) *mqtt.Config { return s.MQTT }, mqtt.New),
		sinkRow("sparkplug", func(s *Sink) *sparkplug.Config { return s.Sparkplug }, sparkplug.New,
			func(c *sparkplug.Config, env buildEnv) { c.DataDir = or(c.DataDir, env.dataDir) }),
		sinkRow("nats", func(s *Sink) *natssink.Config { return s.NATS }, natssink.New),
		sinkRow("kafka", func(s *Sink) *kafka.Config { return s.Kafka }, kafka.New),
		sinkRow("http", func(s *Sink) *httpsink.Config { return s.HTTP }, httpsink.New),
		sinkRow("postgres", func(s *Sink) *postgres.Config { return s.Postgres }, postgres.New),
		sinkRow("historian", func(s *Sink) *historian.Config { return s.Historian }, historian.New,
			func(c *historian.Config, env buildEnv) { c.DataDir = or(c.DataDir, env.dataDir) }),
	}
)

// kindRow is one component kind of component type C building an R.
type kindRow[C, R any] struct {
	key      string
	present  func(*C) bool
	validate func(*C) error
	build    func(*C, buildEnv) (R, error)
}

// buildEnv is what a constructor gets besides its block.
type buildEnv struct {
	log     *slog.Logger
	node    string // node.id or the host name: every sink names the node alike
	dataDir string
}

// validatingPtr is a pointer to a config block that validates itself.
type validatingPtr[B any] interface {
	*B
	Validate() error
}

// row builds the row of kind key: get finds the block (nil when absent),
// prep adjusts a copy of it, build constructs the component.
func row[C, B any, PB validatingPtr[B], T any, R any](key string, get func(*C) PB, build func(B, *slog.Logger) (T, error),
	as func(T) R, prep ...func(PB, buildEnv)) kindRow[C, R] {
	return kindRow[C, R]{
		key:      key,
		present:  func(c *C) bool { return get(c) != nil },
		validate: func(c *C) error { return get(c).Validate() },
		build: func(c *C, env buildEnv) (R, error) {
			blk := deepCopy(*get(c)) // the Config stays as loaded, for Compare
			for _, p := range prep {
				p(&blk, env)
			}
			t, err := build(blk, env.log)
			if err != nil {
				var zero R
				return zero, err
			}
			return as(t), nil
		},
	}
}

func sourceRow[B any, PB validatingPtr[B], T pipeline.Source](key string, get func(*Source) PB,
	build func(B, *slog.Logger) (T, error)) kindRow[Source, pipeline.Source] {
	return row(key, get, build, func(t T) pipeline.Source { return t })
}

func processorRow[B any, PB validatingPtr[B], T pipeline.Processor](key string, get func(*Processor) PB,
	build func(B, *slog.Logger) (T, error)) kindRow[Processor, pipeline.Processor] {
	return row(key, get, build, func(t T) pipeline.Processor { return t })
}

// sinkRow also names the node in every block that has a node name
// (SetNode): node.id, default the host name, unless the block says
// otherwise.
func sinkRow[B any, PB validatingPtr[B], T pipeline.Sink](key string, get func(*Sink) PB,
	build func(B, *slog.Logger) (T, error), prep ...func(PB, buildEnv)) kindRow[Sink, pipeline.Sink] {
	setNode := func(b PB, env buildEnv) {
		if n, ok := any(b).(interface{ SetNode(string) }); ok {
			n.SetNode(env.node)
		}
	}
	return row(key, get, build, func(t T) pipeline.Sink { return t }, append([]func(PB, buildEnv){setNode}, prep...)...)
}

// validateKind validates the one block c must have, under at; noun and
// what name it for the message ("protocol", "modbus, opcua or mqtt").
func validateKind[C, R any](errs *conf.Errors, rows []kindRow[C, R], c *C, at, noun string) {
	n := 0
	for _, r := range rows {
		if r.present(c) {
			n++
			errs.AddPrefixed(at+"."+r.key, r.validate(c))
		}
	}
	if n != 1 {
		errs.Addf(at, "exactly one %s block is required (%s), found %d", noun, kindList(rows), n)
	}
}

// buildKind builds c from its block.
func buildKind[C, R any](rows []kindRow[C, R], c *C, env buildEnv, noun string) (R, error) {
	for _, r := range rows {
		if r.present(c) {
			return r.build(c, env)
		}
	}
	var zero R
	return zero, fmt.Errorf("no %s block", noun)
}

// kindList lists the keys for messages: "a, b or c".
func kindList[C, R any](rows []kindRow[C, R]) string {
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.key
	}
	if len(keys) < 2 {
		return strings.Join(keys, "")
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " or " + keys[len(keys)-1]
}

// kindOf names the kind of c's block ("" if none), for diffs and logs.
func kindOf[C, R any](rows []kindRow[C, R], c *C) string {
	for _, r := range rows {
		if r.present(c) {
			return r.key
		}
	}
	return ""
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
