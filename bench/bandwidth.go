package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/gateway"
	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/sim"
)

// The bandwidth mode (`weir bench -bandwidth`) answers "how many bytes
// leave the site per sample, and how much does a route save?". One
// gateway runs several sinks side by side on the same source stream, each
// its own MQTT client of one embedded broker; a WireBytes hook in the
// broker counts every byte each client puts on the wire, framing
// included. Dividing by the samples the sources produced in the same
// window gives bytes per source sample per encoding and route, comparable
// because every sink saw the same samples.
//
// Only the measured window counts (after Warmup, which covers connecting,
// Sparkplug births and the first poll), so the figures are the steady
// state. A one-minute window aggregate emits once a minute: a Duration of
// whole minutes keeps its figure honest, and a sink's Note says when the
// run was not (WindowNote).

// DemoNamespace is where `weir run` (the demo) puts the plant's tags.
const DemoNamespace = "acme/plant1/filling/line1/filler"

// BandwidthOptions describe a bandwidth run.
type BandwidthOptions struct {
	// Source is "demo" (default: the filling line `weir run` simulates,
	// polled every second as the demo does) or "modbus" (Devices × Tags
	// bench registers at Rate samples/s, whose values change on every
	// poll: the worst case for a deadband).
	Source   string
	Devices  int
	Tags     int
	Rate     float64
	Duration time.Duration // measured window, after Warmup
	Warmup   time.Duration
	Seed     int64 // demo plant seed
	// DataDir holds the gateway's state; a temporary directory when empty.
	DataDir string
	Logger  *slog.Logger
}

// BandwidthResult is what a bandwidth run measured.
type BandwidthResult struct {
	Source        string  `json:"source"`
	Tags          int     `json:"tags"`
	PollInterval  string  `json:"poll_interval"`
	Window        string  `json:"window"`
	SourceSamples uint64  `json:"source_samples"`
	SamplesPerSec float64 `json:"source_samples_per_sec"`
	// LoadAverage is /proc/loadavg at the end (Linux), to judge how idle
	// the machine was.
	LoadAverage string          `json:"load_average,omitempty"`
	Sinks       []SinkBandwidth `json:"sinks"`
}

// SinkBandwidth is one sink's share of a bandwidth run.
type SinkBandwidth struct {
	Sink     string `json:"sink"`
	Encoding string `json:"encoding"`
	Route    string `json:"route"`
	// SamplesWritten are the samples the sink confirmed in the window
	// (after its route: aggregates, not raw samples, for a window route).
	SamplesWritten uint64 `json:"samples_written"`
	// Messages are the PUBLISH packets the broker received from the sink.
	Messages uint64 `json:"messages"`
	// UpBytes: every byte the sink's client sent the broker, framing and
	// keep-alives included; DownBytes: the broker's answers (PUBACKs).
	UpBytes   uint64 `json:"up_bytes"`
	DownBytes uint64 `json:"down_bytes"`
	// BytesPerSourceSample = UpBytes / the sources' samples in the window.
	BytesPerSourceSample float64 `json:"bytes_per_source_sample"`
	// BytesPerMessage is the mean size of a PUBLISH, framing included.
	BytesPerMessage float64 `json:"bytes_per_message"`
	// SavingPercent is the saving in UpBytes against the first sink (JSON
	// per tag, no route): 100 × (1 − UpBytes / baseline).
	SavingPercent float64 `json:"saving_percent"`
	// RouteApplied is false when this build ignores the sink's route (the
	// engine reported no route counters): its figures are then the raw
	// stream's.
	RouteApplied bool `json:"route_applied"`
	// SinkWireBytes is the sink's own wire_bytes counter when it has one:
	// a cross-check of the broker's count (payload and topic as sent).
	SinkWireBytes uint64 `json:"sink_wire_bytes,omitempty"`
	// Note says when the measured window cannot show this sink's steady
	// state (a window route longer than -duration; WindowNote).
	Note string `json:"note,omitempty"`
}

// bwSink is one sink of the comparison: its configuration block (without
// name and buffer) and how it is described in the table.
type bwSink struct {
	name, encoding, route string
	body                  string        // YAML under the sink's name, indented 4
	window                time.Duration // a window route's size (WindowNote)
}

// bandwidthSinks are the sinks compared, the baseline (JSON per tag, no
// route) first. Each is an MQTT client "bw-<name>" of the broker.
func bandwidthSinks(broker string) []bwSink {
	mqttBlock := func(name, mode string) string {
		return fmt.Sprintf("    mqtt: {url: \"tcp://%s\", client_id: bw-%s, topic_prefix: weir/v1, qos: 1, mode: %s}\n", broker, name, mode)
	}
	return []bwSink{
		{name: "json-sample", encoding: "JSON per tag (mode sample), QoS 1", route: "all",
			body: mqttBlock("json-sample", "sample")},
		{name: "json-batch", encoding: "JSON batch (mode batch), QoS 1", route: "all",
			body: mqttBlock("json-batch", "batch")},
		{name: "sparkplug", encoding: "Sparkplug B, every sample (report_by_exception: false), QoS 0", route: "all",
			body: fmt.Sprintf("    sparkplug: {url: \"tcp://%s\", client_id: bw-sparkplug, group_id: Bench, edge_node_id: all, report_by_exception: false}\n", broker)},
		{name: "sparkplug-rbe", encoding: "Sparkplug B, changes only (report_by_exception: true, its default), QoS 0", route: "all",
			body: fmt.Sprintf("    sparkplug: {url: \"tcp://%s\", client_id: bw-sparkplug-rbe, group_id: Bench, edge_node_id: rbe}\n", broker)},
		{name: "json-deadband", encoding: "JSON per tag, QoS 1", route: "deadband 0.5 (changes only for ints, bools, strings), heartbeat 1m",
			body: mqttBlock("json-deadband", "sample") +
				"    route:\n      processors:\n        - name: db\n          deadband: {rules: [{match: [\"#\"], absolute: 0.5, max_silence: 1m}]}\n"},
		{name: "json-window", encoding: "JSON per tag, QoS 1", route: "1-min tumbling window: mean, min, max per numeric tag",
			body: mqttBlock("json-window", "sample") +
				"    route:\n      processors:\n        - name: agg\n          window: {match: [\"#\"], size: 1m, aggregates: [mean, min, max]}\n",
			window: time.Minute},
		{name: "json-downsample", encoding: "JSON per tag, QoS 1", route: "downsample: the last sample per tag every 10 s",
			body: mqttBlock("json-downsample", "sample") +
				"    route:\n      processors:\n        - name: ds\n          downsample: {match: [\"#\"], interval: 10s, mode: last}\n"},
		{name: "sparkplug-deadband", encoding: "Sparkplug B by exception, QoS 0", route: "deadband 0.5, heartbeat 1m (a route and an encoding together)",
			body: fmt.Sprintf("    sparkplug: {url: \"tcp://%s\", client_id: bw-sparkplug-deadband, group_id: Bench, edge_node_id: deadband}\n", broker) +
				"    route:\n      processors:\n        - name: db\n          deadband: {rules: [{match: [\"#\"], absolute: 0.5, max_silence: 1m}]}\n"},
	}
}

func (o *BandwidthOptions) setDefaults() error {
	switch o.Source {
	case "", "demo":
		o.Source = "demo"
		if o.Devices != 0 || o.Tags != 0 || o.Rate != 0 {
			return fmt.Errorf("bench: devices, tags and rate are the modbus source's: the demo plant has its own %d tags, polled every second", len(sim.PlantTags()))
		}
	case "modbus":
		if o.Devices <= 0 {
			o.Devices = 10
		}
		if o.Tags <= 0 {
			o.Tags = 100
		}
		if o.Rate <= 0 {
			o.Rate = 1000
		}
		bo := Options{Devices: o.Devices, Tags: o.Tags, Rate: o.Rate}
		if bo.PollInterval() < time.Millisecond {
			return fmt.Errorf("bench: %d devices × %d tags at %.0f samples/s needs polls faster than 1ms; add devices or tags", o.Devices, o.Tags, o.Rate)
		}
	default:
		return fmt.Errorf("bench: bandwidth source %q: want demo or modbus", o.Source)
	}
	if o.Duration <= 0 {
		o.Duration = time.Minute
	}
	if o.Warmup <= 0 {
		o.Warmup = 5 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// RunBandwidth runs the comparison: its own broker (counting bytes), its
// own source peers, one gateway with every sink of bandwidthSinks.
func RunBandwidth(ctx context.Context, o BandwidthOptions) (BandwidthResult, error) {
	if err := o.setDefaults(); err != nil {
		return BandwidthResult{}, err
	}
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "weir-bench-bw-")
		if err != nil {
			return BandwidthResult{}, err
		}
		defer os.RemoveAll(dir)
		o.DataDir = dir
	}
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		return BandwidthResult{}, err
	}
	defer b.Close()
	wb := NewWireBytes()
	if err := b.Server().AddHook(wb, nil); err != nil {
		return BandwidthResult{}, fmt.Errorf("bench: broker hook: %w", err)
	}

	var src string
	res := BandwidthResult{Source: o.Source}
	switch o.Source {
	case "demo":
		s, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: o.Seed}, nil)
		if err != nil {
			return BandwidthResult{}, err
		}
		if err := s.Start(ctx); err != nil {
			return BandwidthResult{}, fmt.Errorf("bench: simulator: %w", err)
		}
		defer s.Close()
		if src, err = demoSourceYAML(s.Addr(), o.DataDir); err != nil {
			return BandwidthResult{}, err
		}
		res.Tags, res.PollInterval = len(sim.PlantTags()), time.Second.String()
	case "modbus":
		rp, err := StartPeers(ctx, o.Devices, o.Tags, false, nil)
		if err != nil {
			return BandwidthResult{}, err
		}
		defer rp.Close()
		bo := Options{Devices: o.Devices, Tags: o.Tags, Rate: o.Rate, DataDir: o.DataDir}
		src = modbusYAML(bo, rp.Devices)
		res.Tags, res.PollInterval = o.Devices*o.Tags, bo.PollInterval().String()
	}
	sinks := bandwidthSinks(b.Addr())
	text := src + bandwidthSinksYAML(sinks)
	cfg, err := config.Parse("bench-bandwidth.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		return BandwidthResult{}, fmt.Errorf("bench: generated configuration: %w", err)
	}
	cfg.Engine.DrainTimeout = 10 * time.Second
	node, err := gateway.New(cfg, gateway.Options{Logger: o.Logger, ConfigData: []byte(text)})
	if err != nil {
		return BandwidthResult{}, err
	}
	eng := node.Engine()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- node.Run(runCtx) }()
	halt := func(err error) (BandwidthResult, error) {
		stop()
		return BandwidthResult{}, errors.Join(err, <-done)
	}

	if !sleepCtx(ctx, o.Warmup) {
		return halt(ctx.Err())
	}
	st0, wire0 := eng.Status(), wb.Snapshot()
	t0 := time.Now()
	if !sleepCtx(ctx, o.Duration) {
		return halt(ctx.Err())
	}
	st1, wire1 := eng.Status(), wb.Snapshot()
	window := time.Since(t0)
	stop()
	if err := <-done; err != nil {
		return BandwidthResult{}, fmt.Errorf("bench: gateway: %w", err)
	}

	res.Window = window.Round(time.Millisecond).String()
	res.SourceSamples = st1.Emitted - st0.Emitted
	res.SamplesPerSec = float64(res.SourceSamples) / window.Seconds()
	res.LoadAverage = loadAverage()
	res.Sinks = sinkBandwidth(sinks, st0, st1, wire0, wire1, res.SourceSamples)
	for i, s := range sinks {
		res.Sinks[i].Note = WindowNote(s.window, o.Duration)
	}
	return res, nil
}

// sinkBandwidth turns two readings of the engine and the broker into the
// per-sink figures.
func sinkBandwidth(sinks []bwSink, st0, st1 engine.Status, wire0, wire1 []ClientBytes, samples uint64) []SinkBandwidth {
	byClient := func(snap []ClientBytes, id string) ClientBytes {
		for _, c := range snap {
			if c.Client == id {
				return c
			}
		}
		return ClientBytes{}
	}
	out := make([]SinkBandwidth, 0, len(sinks))
	for _, s := range sinks {
		c0, c1 := byClient(wire0, "bw-"+s.name), byClient(wire1, "bw-"+s.name)
		k0, k1 := sinkCounters(st0, s.name), sinkCounters(st1, s.name)
		_, routed := k1["route_in_samples"]
		sb := SinkBandwidth{
			Sink: s.name, Encoding: s.encoding, Route: s.route,
			SamplesWritten: k1["samples_written"] - k0["samples_written"],
			Messages:       c1.Publishes - c0.Publishes,
			UpBytes:        c1.UpBytes - c0.UpBytes,
			DownBytes:      c1.DownBytes - c0.DownBytes,
			RouteApplied:   routed || s.route == "all",
			SinkWireBytes:  k1["wire_bytes"] - k0["wire_bytes"],
		}
		if samples > 0 {
			sb.BytesPerSourceSample = float64(sb.UpBytes) / float64(samples)
		}
		if sb.Messages > 0 {
			sb.BytesPerMessage = float64(c1.PublishBytes-c0.PublishBytes) / float64(sb.Messages)
		}
		if len(out) > 0 && out[0].UpBytes > 0 {
			sb.SavingPercent = 100 * (1 - float64(sb.UpBytes)/float64(out[0].UpBytes))
		}
		out = append(out, sb)
	}
	return out
}

// sinkCounters finds a sink's counters in an engine status.
func sinkCounters(st engine.Status, name string) map[string]uint64 {
	for _, cs := range st.Components {
		if cs.Kind == "sink" && cs.Name == name {
			return cs.Counters
		}
	}
	return nil
}

// demoSourceYAML renders the demo's node and source from the plant's
// register map, as `weir run` does: one device, one poll group at 1 s.
func demoSourceYAML(simAddr, dataDir string) (string, error) {
	tags, err := yaml.Marshal(sim.PlantTags())
	if err != nil {
		return "", fmt.Errorf("bench: plant register map: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `node: {id: weir-bench-bandwidth}
data_dir: %q
sources:
  - name: filling-line
    modbus:
      devices:
        - name: filler-plc
          address: %q
          unit_id: 1
          timeout: 1s
          namespace: %s
          groups:
            - interval: 1s
              tags:
`, dataDir, simAddr, DemoNamespace)
	for _, line := range strings.Split(strings.TrimRight(string(tags), "\n"), "\n") {
		b.WriteString("                ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// bandwidthSinksYAML renders the sinks, each on a memory buffer: the
// bytes on the wire do not depend on the buffer, and the disk would only
// add noise.
func bandwidthSinksYAML(sinks []bwSink) string {
	var b strings.Builder
	b.WriteString("sinks:\n")
	for _, s := range sinks {
		fmt.Fprintf(&b, "  - name: %s\n    buffer: {type: memory, capacity: 200000, policy: drop_oldest}\n%s", s.name, s.body)
	}
	return b.String()
}

// loadAverage is /proc/loadavg's first three fields, or "".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
