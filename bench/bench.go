package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/gateway"
	"github.com/weir-edge/weir/internal/latency"
	"github.com/weir-edge/weir/pipeline"
)

// Options describe one run.
type Options struct {
	// AtWindowEnd, when set, is called once the measured window ends, with
	// the gateway still running (a heap profile, say).
	AtWindowEnd func()
	Devices     int           // simulated devices
	Tags        int           // registers (tags) per device
	Rate        float64       // offered samples per second, all devices together
	Duration    time.Duration // measured window, after Warmup
	Warmup      time.Duration
	QoS         int
	Mode        string // "batch" (one message per device per cycle) or "sample"
	// Broker is host:port of an MQTT broker; the peers provide an embedded
	// one when empty.
	Broker string
	// ProtocolVersion of the MQTT sink: "5" or "3.1.1".
	ProtocolVersion string
	// Buffer is the sink's buffer: "disk" (durable, fsync group) or
	// "memory".
	Buffer string
	// DataDir holds the disk buffer; a temporary directory when empty.
	DataDir string
	// Outage, when set, cuts the uplink to the broker for this long after
	// the measured window, then measures how the held backlog drains
	// (at DrainRate, default 5× Rate) and the live latency meanwhile.
	Outage    time.Duration
	DrainRate float64
	Logger    *slog.Logger

	// Source is "modbus" (default: Devices × Tags polled) or "opcua"
	// (Items monitored items on the OPC UA simulator; see opcua.go).
	Source             string
	Items              int           // OPC UA: monitored items (default 1000)
	PublishingInterval time.Duration // OPC UA: subscription publishing interval (default 100ms)
	SamplingInterval   time.Duration // OPC UA: items' sampling interval (default: the publishing interval)
	ChangeInterval     time.Duration // OPC UA: how often the server changes every value (default: see OPCUAChangeInterval)
	// Aligned polls every device at the same instant (the Modbus source's
	// stagger off): the worst case, one burst of Devices × Tags per cycle.
	Aligned bool
	// OPCUANamespace prefixes the items' node ids "s=bench.00000" …: "ns=1"
	// (default, the simulator) or e.g. "nsu=urn:weir:peer" for another
	// server serving the same items (testdata/nodeopcua/server.js
	// --bench-items).
	OPCUANamespace string
	// Routes 3 adds two sinks on routes of their own beside the measured
	// one, whose route then selects by pattern: all tags; a fifth of the
	// devices behind a deadband; a one-minute window aggregate of all
	// tags (see routesYAML). 0 (default): the one sink, no route.
	Routes int
}

// Peers are the load generators: device addresses and the broker.
type Peers struct {
	Devices []string `json:"devices"`
	Broker  string   `json:"broker"`
	// OPCUA is the OPC UA server's endpoint, in OPC UA mode.
	OPCUA string `json:"opcua,omitempty"`
}

// Result is what a run measured.
type Result struct {
	Devices       int     `json:"devices"`
	TagsPerDevice int     `json:"tags_per_device"`
	PollInterval  string  `json:"poll_interval"`
	OfferedRate   float64 `json:"offered_samples_per_sec"`
	SamplesPerSec float64 `json:"samples_per_sec"`
	Delivered     uint64  `json:"delivered"`
	LatencyP50ms  float64 `json:"latency_p50_ms"`
	LatencyP99ms  float64 `json:"latency_p99_ms"`
	LatencyMaxms  float64 `json:"latency_max_ms"`
	CPUPercent    float64 `json:"cpu_percent"`
	// PeakRSSMB is the highest resident set sampled (every 100 ms) during
	// the measured window: the gateway under load. ProcessMaxRSSMB is the
	// kernel's lifetime high-water mark, which includes start-up (parsing
	// a 10,000-tag configuration, for one).
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	ProcessMaxRSSMB float64 `json:"process_max_rss_mb"`
	Lost            uint64  `json:"lost"`
	Dropped         uint64  `json:"dropped"`
	PollOverruns    uint64  `json:"poll_overruns"`
	RequestsPerSec  float64 `json:"modbus_requests_per_sec"`
	QoS             int     `json:"qos"`
	Buffer          string  `json:"buffer"`
	Mode            string  `json:"mode"`
	Broker          string  `json:"broker"`
	Window          string  `json:"window"`
	Source          string  `json:"source"`
	// OPCUA holds the OPC UA mode's own figures.
	OPCUA *OPCUAResult `json:"opcua,omitempty"`
	// RouteSinks are every sink's route figures in the window with
	// Options.Routes (the measured sink "bench" first).
	RouteSinks []RouteSinkResult `json:"route_sinks,omitempty"`

	// Outage figures (with Options.Outage).
	OutageSeconds        float64 `json:"outage_seconds,omitempty"`
	HeldSamples          int     `json:"held_samples,omitempty"`
	ReconnectSeconds     float64 `json:"reconnect_seconds,omitempty"`
	DrainSeconds         float64 `json:"drain_seconds,omitempty"`
	DrainSamplesPerSec   float64 `json:"drain_samples_per_sec,omitempty"`
	DrainVsLive          float64 `json:"drain_vs_live_rate,omitempty"`
	LiveP50DuringDrainMs float64 `json:"live_latency_p50_during_drain_ms,omitempty"`
	LiveP99DuringDrainMs float64 `json:"live_latency_p99_during_drain_ms,omitempty"`
}

func (o *Options) setDefaults() error {
	switch o.Source {
	case "", "modbus":
		o.Source = "modbus"
	case "opcua":
		if err := o.setOPCUADefaults(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("bench: source %q: want modbus or opcua", o.Source)
	}
	if o.Devices <= 0 {
		o.Devices = 50
	}
	if o.Tags <= 0 {
		o.Tags = 200
	}
	if o.Rate <= 0 {
		o.Rate = 100_000
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.Mode == "" {
		o.Mode = "batch"
	}
	if o.ProtocolVersion == "" {
		o.ProtocolVersion = "5"
	}
	if o.Buffer == "" {
		o.Buffer = "disk"
	}
	if o.Buffer != "disk" && o.Buffer != "memory" {
		return fmt.Errorf("bench: buffer %q: want disk or memory", o.Buffer)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QoS < 0 || o.QoS > 1 {
		return fmt.Errorf("bench: qos %d: want 0 or 1", o.QoS)
	}
	if o.Mode != "batch" && o.Mode != "sample" {
		return fmt.Errorf("bench: mode %q: want batch or sample", o.Mode)
	}
	if o.Routes != 0 && o.Routes != 3 {
		return fmt.Errorf("bench: routes %d: want 0 (one sink) or 3 (three sinks on different routes)", o.Routes)
	}
	if o.Routes != 0 && o.Source != "modbus" {
		return errors.New("bench: routes: only with the modbus source")
	}
	if o.Outage > 0 && o.Routes != 0 {
		return errors.New("bench: an outage drill measures one sink: not with routes")
	}
	if o.Source == "modbus" && o.PollInterval() < time.Millisecond {
		return fmt.Errorf("bench: %d devices × %d tags at %.0f samples/s needs polls faster than 1ms; add devices or tags", o.Devices, o.Tags, o.Rate)
	}
	return nil
}

// PollInterval is the per-device interval that offers Rate.
func (o *Options) PollInterval() time.Duration {
	return time.Duration(float64(o.Devices*o.Tags) / o.Rate * float64(time.Second))
}

// Run measures the pipeline against peers that are already running.
func Run(ctx context.Context, o Options, peers Peers) (Result, error) {
	if err := o.setDefaults(); err != nil {
		return Result{}, err
	}
	opcua := o.Source == "opcua"
	switch {
	case opcua && peers.OPCUA == "":
		return Result{}, errors.New("bench: no OPC UA server")
	case !opcua && len(peers.Devices) != o.Devices:
		return Result{}, fmt.Errorf("bench: %d device addresses for %d devices", len(peers.Devices), o.Devices)
	}
	brokerAddr := firstNonEmpty(o.Broker, peers.Broker)
	if brokerAddr == "" {
		return Result{}, errors.New("bench: no broker")
	}
	// The gateway keeps its audit trail and alarm state in the data dir,
	// whatever the buffer: a temporary one unless given.
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "weir-bench-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(dir)
		o.DataDir = dir
	}
	sinkBroker := brokerAddr
	var px *proxy
	if o.Outage > 0 {
		if o.Buffer != "disk" {
			return Result{}, errors.New("bench: an outage needs the disk buffer")
		}
		if o.DrainRate == 0 {
			o.DrainRate = 5 * o.Rate
		}
		var err error
		if px, err = startProxy(brokerAddr); err != nil {
			return Result{}, err
		}
		defer px.Close()
		sinkBroker = px.addr
	}
	text := configYAML(o, peers.Devices, sinkBroker)
	if opcua {
		text = opcuaConfigYAML(o, peers.OPCUA, sinkBroker)
	}
	cfg, err := config.Parse("bench.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		return Result{}, fmt.Errorf("bench: generated configuration: %w", err)
	}
	cfg.Engine.DrainTimeout = 30 * time.Second
	// The gateway as weir run composes it (no HTTP API): what is measured
	// is what runs.
	gopts := gateway.Options{Logger: o.Logger, ConfigData: []byte(text)}
	var rx *latency.Histogram
	if opcua {
		rx = new(latency.Histogram)
		gopts.WrapSource = func(s pipeline.Source) pipeline.Source { return &receiptTap{inner: s, hist: rx} }
	}
	node, err := gateway.New(cfg, gopts)
	if err != nil {
		return Result{}, err
	}
	eng := node.Engine()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- node.Run(runCtx) }()

	if opcua {
		if err := waitOPCUAReady(ctx, eng, o.Items); err != nil {
			stop()
			return Result{}, errors.Join(err, <-done)
		}
	}
	if !sleepCtx(ctx, o.Warmup) {
		stop()
		return Result{}, errors.Join(ctx.Err(), <-done)
	}
	eng.ResetLatency()
	var uaBefore opcuaStatus
	if opcua {
		rx.Reset()
		uaBefore = opcuaSnapshot(eng)
	}
	// One status for both readings: two would be samples apart.
	stBefore := eng.Status()
	before := snapshotOf(stBefore)
	cpu0 := cpuTime()
	t0 := time.Now()
	peakRSS := sampleRSS(ctx, o.Duration)
	window := time.Since(t0)
	cpu1 := cpuTime()
	if o.AtWindowEnd != nil {
		o.AtWindowEnd()
	}
	stAfter := eng.Status()
	after := snapshotOf(stAfter)
	// One reading of the live histograms for every figure: samples keep
	// arriving, and two readings would disagree. Weir's own share first:
	// read before the end-to-end figures, it cannot exceed them.
	var gw [3]time.Duration
	gw[0], _ = eng.SinkGatewayLatency("bench", 0.50)
	gw[1], _ = eng.SinkGatewayLatency("bench", 0.99)
	gw[2], _ = eng.SinkGatewayLatency("bench", 1)
	p50, _, _ := eng.SinkLatency("bench", 0.50)
	p99, _, _ := eng.SinkLatency("bench", 0.99)
	pmax, _, _ := eng.SinkLatency("bench", 1)
	var uaRes *OPCUAResult
	if opcua {
		uaRes = opcuaResult(o, rx, uaBefore, opcuaSnapshot(eng), window, [3]time.Duration{p50, p99, pmax}, gw)
	}

	var out outageResult
	if px != nil {
		out, err = measureOutage(ctx, eng, px, o)
		if err != nil {
			stop()
			<-done
			return Result{}, err
		}
	}

	stop()
	if err := <-done; err != nil {
		return Result{}, fmt.Errorf("bench: engine: %w", err)
	}
	final := snapshot(eng)
	res := Result{
		Devices:         o.Devices,
		TagsPerDevice:   o.Tags,
		PollInterval:    o.PollInterval().String(),
		OfferedRate:     o.Rate,
		Delivered:       after.written - before.written,
		SamplesPerSec:   float64(after.written-before.written) / window.Seconds(),
		LatencyP50ms:    ms(p50),
		LatencyP99ms:    ms(p99),
		LatencyMaxms:    ms(pmax),
		CPUPercent:      100 * (cpu1 - cpu0).Seconds() / window.Seconds(),
		PeakRSSMB:       peakRSS,
		ProcessMaxRSSMB: maxRSSMB(),
		Dropped:         final.dropped,
		PollOverruns:    after.overruns - before.overruns,
		RequestsPerSec:  float64(after.requests-before.requests) / window.Seconds(),
		Buffer:          o.Buffer,
		QoS:             o.QoS,
		Mode:            o.Mode,
		Broker:          brokerAddr,
		Window:          window.Round(time.Millisecond).String(),
		Source:          o.Source,
		OPCUA:           uaRes,
	}
	if o.Routes != 0 {
		res.RouteSinks = routeSinkResults(stBefore, stAfter, o.Duration)
	}
	if opcua {
		res.Devices, res.TagsPerDevice, res.PollInterval = 1, o.Items, ""
	}
	if final.emitted > final.written {
		res.Lost = final.emitted - final.written
	}
	if px != nil {
		res.OutageSeconds = o.Outage.Seconds()
		res.HeldSamples = out.held
		res.DrainSeconds = out.drain.Seconds()
		res.ReconnectSeconds = out.reconnect.Seconds()
		res.DrainSamplesPerSec = out.drainRate
		res.DrainVsLive = out.drainRate / o.Rate
		res.LiveP50DuringDrainMs = ms(out.liveP50)
		res.LiveP99DuringDrainMs = ms(out.liveP99)
	}
	return res, nil
}

type outageResult struct {
	held             int
	drain, reconnect time.Duration
	drainRate        float64
	liveP50, liveP99 time.Duration
}

// measureOutage cuts the uplink for o.Outage, restores it, and waits until
// the backlog is delivered: the replayed-sample count stops growing and the
// buffer is back to its steady depth.
func measureOutage(ctx context.Context, eng *engine.Engine, px *proxy, o Options) (outageResult, error) {
	px.Cut()
	if !sleepCtx(ctx, o.Outage) {
		return outageResult{}, ctx.Err()
	}
	held := bufferDepth(eng)
	replayed0 := replayed(eng)
	if err := px.Restore(); err != nil {
		return outageResult{}, err
	}
	restored := time.Now()
	deadline := restored.Add(2*o.Outage + time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// The sink reconnects after its backoff delay (up to 30 s): the drain
	// starts with the first replayed sample delivered.
	for replayed(eng) == replayed0 {
		if time.Now().After(deadline) {
			return outageResult{}, errNoDrain
		}
		select {
		case <-ctx.Done():
			return outageResult{}, ctx.Err()
		case <-tick.C:
		}
	}
	eng.ResetLatency()
	t0 := time.Now()
	reconnect := t0.Sub(restored)
	steady := int(o.Rate) // at most a second of live data in flight
	for bufferDepth(eng) > steady {
		if time.Now().After(deadline) {
			return outageResult{}, errNoDrain
		}
		select {
		case <-ctx.Done():
			return outageResult{}, ctx.Err()
		case <-tick.C:
		}
	}
	drain := time.Since(t0)
	p50, _, _ := eng.SinkLatency("bench", 0.50)
	p99, _, _ := eng.SinkLatency("bench", 0.99)
	n := replayed(eng) - replayed0
	return outageResult{held: held, drain: drain, reconnect: reconnect, drainRate: float64(n) / drain.Seconds(), liveP50: p50, liveP99: p99}, nil
}

func bufferDepth(eng *engine.Engine) int {
	for _, cs := range eng.Status().Components {
		if cs.Kind == "sink" && cs.Name == "bench" && cs.Buffer != nil {
			return cs.Buffer.Depth
		}
	}
	return 0
}

func replayed(eng *engine.Engine) uint64 {
	for _, cs := range eng.Status().Components {
		if cs.Kind == "sink" && cs.Name == "bench" {
			return cs.Counters["samples_replayed"]
		}
	}
	return 0
}

type counters struct {
	emitted, written, dropped, overruns, requests uint64
}

func snapshot(eng *engine.Engine) counters { return snapshotOf(eng.Status()) }

func snapshotOf(st engine.Status) counters {
	c := counters{emitted: st.Emitted - st.Filtered}
	for _, cs := range st.Components {
		switch cs.Kind {
		case "sink":
			if cs.Name != "bench" {
				continue // -routes: the others are reported by routeSinkResults
			}
			c.written += cs.Counters["samples_written"]
			// What the sink's route let into its buffer is what it owes;
			// the gateway's own samples (not bench/#) are not, with -routes.
			if n, ok := cs.Counters["route_chain_out_samples"]; ok {
				c.emitted = n
			}
			if cs.Buffer != nil {
				c.dropped += cs.Buffer.Dropped
			}
		case "source":
			for _, child := range cs.Children {
				c.overruns += child.Counters["poll_overruns"]
				c.requests += child.Counters["requests"]
			}
		}
	}
	return c
}

// configYAML renders the gateway configuration under test.
func configYAML(o Options, devices []string, broker string) string {
	if o.Routes != 0 {
		return modbusYAML(o, devices) + routesYAML(o, broker)
	}
	return modbusYAML(o, devices) + sinkYAML(o, broker)
}

// modbusYAML renders the node, data dir and the bench devices' Modbus
// source: everything but the sinks.
func modbusYAML(o Options, devices []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {id: weir-bench}\ndata_dir: %q\nsources:\n  - name: bench\n    modbus:\n      stagger: %t\n      devices:\n", o.DataDir, !o.Aligned)
	for i, addr := range devices {
		fmt.Fprintf(&b, "        - name: dev%03d\n          address: %q\n          timeout: 2s\n          namespace: bench/line/dev%03d\n          groups:\n            - interval: %s\n              tags:\n",
			i, addr, i, o.PollInterval())
		for t := 0; t < o.Tags; t++ {
			fmt.Fprintf(&b, "                - {name: r%05d, table: holding, address: %d, type: uint16}\n", t, t)
		}
	}
	return b.String()
}

// sinkYAML renders the MQTT sink under test, the same in every mode.
func sinkYAML(o Options, broker string) string {
	return fmt.Sprintf(`sinks:
  - name: bench
    batch_size: 1000
    buffer: %s
    mqtt:
      url: tcp://%s
      client_id: weir-bench-%d
      protocol_version: %q
      topic_prefix: weir-bench
      qos: %d
      mode: %s
      max_inflight: 256
`, bufferYAML(o.Buffer, o.DrainRate), broker, time.Now().UnixNano()%1_000_000, o.ProtocolVersion, o.QoS, o.Mode)
}

func bufferYAML(kind string, drainRate float64) string {
	if kind == "memory" {
		return "{type: memory, capacity: 500000, policy: drop_oldest}"
	}
	return fmt.Sprintf("{type: disk, fsync: group, policy: drop_oldest, max_bytes: 4294967296, drain_rate: %g}", drainRate)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sampleRSS waits for d (or ctx) and returns the highest resident set seen,
// in MB, sampling /proc/self/statm every 100 ms.
func sampleRSS(ctx context.Context, d time.Duration) float64 {
	peak := currentRSSMB()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return peak
		case <-end.C:
			return max(peak, currentRSSMB())
		case <-tick.C:
			peak = max(peak, currentRSSMB())
		}
	}
}

// currentRSSMB reads the resident set from /proc/self/statm (Linux).
func currentRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return 0
	}
	return pages * float64(os.Getpagesize()) / (1 << 20)
}

// maxRSSMB is the process's lifetime high-water resident set (Linux reports
// KiB).
func maxRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
