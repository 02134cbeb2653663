package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/weir-edge/weir/bench"
)

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeHeapProfile writes the live heap (after a GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return nil
}

// defineBench adds bench's flags; it takes no arguments.
func defineBench(fs *flag.FlagSet) body {
	var o bench.Options
	fs.IntVar(&o.Devices, "devices", 50, "simulated Modbus devices")
	fs.IntVar(&o.Tags, "tags", 200, "tags (holding registers) per device")
	fs.Float64Var(&o.Rate, "rate", 100_000, "offered samples per second (open loop)")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "measured window")
	fs.DurationVar(&o.Warmup, "warmup", 3*time.Second, "run before measuring")
	fs.IntVar(&o.QoS, "qos", 1, "MQTT QoS, 0 or 1")
	fs.BoolVar(&o.Aligned, "aligned", false, "poll every device at the same instant (stagger: false): one burst per cycle, the worst case")
	fs.StringVar(&o.Mode, "mode", "batch", "MQTT sink mode: batch (one message per device per cycle) or sample")
	fs.StringVar(&o.Broker, "broker", "", "host:port of an MQTT broker (default: an embedded broker in the peer process)")
	fs.StringVar(&o.ProtocolVersion, "protocol", "5", "MQTT protocol version: 5 or 3.1.1")
	fs.StringVar(&o.Buffer, "buffer", "disk", "sink buffer: disk (durable, fsync group, in a temporary directory) or memory")
	fs.DurationVar(&o.Outage, "outage", 0, "after the window, cut the uplink to the broker this long and measure the backlog drain")
	fs.Float64Var(&o.DrainRate, "drain-rate", 0, "backlog replay rate with -outage (default 5× -rate)")
	fs.StringVar(&o.Source, "source", "modbus", "load source: modbus (-devices × -tags polled) or opcua (-items monitored items on the OPC UA simulator, security None)")
	fs.IntVar(&o.Items, "items", 1000, "with -source opcua: monitored items, all changing every -sampling-interval")
	fs.DurationVar(&o.PublishingInterval, "publishing-interval", 100*time.Millisecond, "with -source opcua: subscription publishing interval")
	fs.DurationVar(&o.SamplingInterval, "sampling-interval", 0, "with -source opcua: items' sampling interval (default: the publishing interval)")
	fs.DurationVar(&o.ChangeInterval, "change-interval", 0, "with -source opcua: how often the server changes every value (default: the sampling interval + 1/32, so changes sweep the publishing cycle)")
	uaEndpoint := fs.String("opcua-endpoint", "", "with -source opcua: measure against this server instead of the simulator; it must serve -items Double variables s=bench.00000 … changing every -change-interval (node sources/opcua/testdata/nodeopcua/server.js --bench-items N does); needs -broker")
	fs.StringVar(&o.OPCUANamespace, "opcua-namespace", "", "with -opcua-endpoint: node id namespace of the bench items (default ns=1; node-opcua's server.js: nsu=urn:weir:peer)")
	fs.IntVar(&o.Routes, "routes", 0, "3: three sinks on different routes side by side (all tags; a fifth of the devices behind a deadband; a 1-min window aggregate), the figures measured on the first")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	inProcess := fs.Bool("in-process", false, "run devices and broker inside this process (CPU/RSS then include them)")
	peersOnly := fs.Bool("peers", false, "internal: serve the load peers and print their addresses as JSON")
	withBroker := fs.Bool("with-broker", false, "internal: with -peers, also run an embedded broker")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the gateway side) to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile of this process to this file at the end of the measured window")
	traceFile := fs.String("trace", "", "write a Go execution trace of this process to this file (go tool trace)")
	bandwidth := fs.Bool("bandwidth", false, "measure bytes on the wire per sample instead: the demo plant (or -source modbus) through eight sinks side by side "+
		"(JSON per tag, JSON batch, Sparkplug B, Sparkplug B by exception, JSON behind a deadband, a 1-min window and a 10-s downsample route, Sparkplug B behind the deadband), "+
		"counted at an embedded broker; default -duration 1m, and with -source modbus 10 × 100 tags at 1000 samples/s")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 0 {
			fmt.Fprintf(stderr, "weir bench: unexpected argument %q\n", pos[0])
			return errUsage
		}
		if *bandwidth {
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			return runBandwidth(ctx, o, set, *asJSON, stdout, stderr)
		}
		return runBench(ctx, o, benchFlags{uaEndpoint: *uaEndpoint, asJSON: *asJSON, inProcess: *inProcess, peersOnly: *peersOnly,
			withBroker: *withBroker, cpuProfile: *cpuProfile, memProfile: *memProfile, traceFile: *traceFile}, stdout, stderr)
	}
}

type benchFlags struct {
	uaEndpoint                               string
	asJSON, inProcess, peersOnly, withBroker bool
	cpuProfile, memProfile, traceFile        string
}

func runBench(ctx context.Context, o bench.Options, f benchFlags, stdout, stderr io.Writer) error {
	uaEndpoint, asJSON, inProcess, peersOnly, withBroker := &f.uaEndpoint, &f.asJSON, &f.inProcess, &f.peersOnly, &f.withBroker
	cpuProfile, memProfile, traceFile := &f.cpuProfile, &f.memProfile, &f.traceFile
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return fmt.Errorf("bench: trace: %w", err)
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return fmt.Errorf("bench: trace: %w", err)
		}
		defer func() { trace.Stop(); f.Close() }()
	}
	if *peersOnly {
		return servePeers(ctx, o, *withBroker, stdout)
	}
	var peers bench.Peers
	if *uaEndpoint != "" {
		if o.Source != "opcua" || o.Broker == "" {
			return fmt.Errorf("bench: -opcua-endpoint needs -source opcua and -broker: %w", errUsage)
		}
		peers = bench.Peers{OPCUA: *uaEndpoint}
	} else if o.Source == "opcua" {
		p, stop, err := startOPCUAPeers(ctx, o, *inProcess, stderr)
		if err != nil {
			return err
		}
		defer stop()
		peers = p
	} else if *inProcess {
		rp, err := bench.StartPeers(ctx, o.Devices, o.Tags, o.Broker == "", nil)
		if err != nil {
			return err
		}
		defer rp.Close()
		peers = rp.Peers
	} else {
		p, stopPeers, err := startPeerProcess(ctx, o.Devices, o.Tags, o.Broker == "", stderr)
		if err != nil {
			return err
		}
		defer stopPeers()
		peers = p
	}
	if o.Source == "opcua" {
		fmt.Fprintf(stderr, "weir bench: OPC UA, %d items changing every %s, sampling %s, publishing interval %s, security None, QoS %d, %s mode, %s buffer, %s warm-up + %s\n",
			o.Items, o.OPCUAChangeInterval(), firstDuration(o.SamplingInterval, o.PublishingInterval), o.PublishingInterval, o.QoS, o.Mode, o.Buffer, o.Warmup, o.Duration)
	} else {
		polls := "staggered"
		if o.Aligned {
			polls = "aligned"
		}
		sinks := "one sink"
		if o.Routes != 0 {
			sinks = "three sinks on different routes"
		}
		fmt.Fprintf(stderr, "weir bench: %d devices × %d tags, poll every %s, %s (offered %.0f samples/s), QoS %d, %s mode, %s buffer, %s, %s warm-up + %s\n",
			o.Devices, o.Tags, o.PollInterval(), polls, o.Rate, o.QoS, o.Mode, o.Buffer, sinks, o.Warmup, o.Duration)
	}
	if *memProfile != "" {
		o.AtWindowEnd = func() {
			if err := writeHeapProfile(*memProfile); err != nil {
				fmt.Fprintln(stderr, "weir bench:", err)
			}
		}
	}
	res, err := bench.Run(ctx, o, peers)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"devices × tags", fmt.Sprintf("%d × %d (poll %s)", res.Devices, res.TagsPerDevice, res.PollInterval)},
		{"offered", fmt.Sprintf("%.0f samples/s", res.OfferedRate)},
		{"delivered", fmt.Sprintf("%.0f samples/s (%d in %s)", res.SamplesPerSec, res.Delivered, res.Window)},
		{"latency p50 / p99 / max", fmt.Sprintf("%.2f / %.2f / %.2f ms", res.LatencyP50ms, res.LatencyP99ms, res.LatencyMaxms)},
		{"cpu", fmt.Sprintf("%.0f%% of one core", res.CPUPercent)},
		{"rss under load (peak)", fmt.Sprintf("%.1f MB (process lifetime max %.1f MB)", res.PeakRSSMB, res.ProcessMaxRSSMB)},
		{"modbus requests", fmt.Sprintf("%.0f /s", res.RequestsPerSec)},
		{"poll overruns", strconv.FormatUint(res.PollOverruns, 10)},
		{"lost / dropped", fmt.Sprintf("%d / %d", res.Lost, res.Dropped)},
		{"broker", fmt.Sprintf("%s (QoS %d, %s mode, %s buffer)", res.Broker, res.QoS, res.Mode, res.Buffer)},
	}
	for _, rs := range res.RouteSinks {
		row := fmt.Sprintf("%s: route in %d, filtered %d, out %d; %d written", rs.Route, rs.In, rs.Filtered, rs.ChainOut, rs.Written)
		if rs.Note != "" {
			row += " — note: " + rs.Note
		}
		rows = append(rows, [2]string{"sink " + rs.Sink, row})
	}
	if ua := res.OPCUA; ua != nil {
		rows = append(rows[:0],
			[2]string{"opc ua items", fmt.Sprintf("%d changing every %s (%.0f changes/s), sampling %s, publishing %s (revised %s), security %s",
				ua.Items, ua.ChangeInterval, ua.ChangesPerSec, ua.SamplingInterval, ua.PublishingInterval, ua.RevisedPublishing, ua.Security)},
			[2]string{"delivered", fmt.Sprintf("%.0f samples/s (%d in %s); %.0f notifications/s received", res.SamplesPerSec, res.Delivered, res.Window, ua.NotificationsPerS)},
			[2]string{"latency p50 / p99 / max", fmt.Sprintf("%.2f / %.2f / %.2f ms (source timestamp → PUBACK)", res.LatencyP50ms, res.LatencyP99ms, res.LatencyMaxms)},
			[2]string{"beyond publishing interval", fmt.Sprintf("%.2f / %.2f / %.2f ms (latency − %s)", ua.BeyondP50ms, ua.BeyondP99ms, ua.BeyondMaxms, ua.PublishingInterval)},
			[2]string{"receipt delay p50 / p99 / max", fmt.Sprintf("%.2f / %.2f / %.2f ms (source timestamp → publish response decoded)", ua.ReceiptP50ms, ua.ReceiptP99ms, ua.ReceiptMaxms)},
			[2]string{"gateway p50 / p99 / max", fmt.Sprintf("%.2f / %.2f / %.2f ms (publish response decoded → PUBACK, per sample)", ua.GatewayP50ms, ua.GatewayP99ms, ua.GatewayMaxms)},
			[2]string{"cpu", fmt.Sprintf("%.0f%% of one core", res.CPUPercent)},
			[2]string{"rss under load (peak)", fmt.Sprintf("%.1f MB (process lifetime max %.1f MB)", res.PeakRSSMB, res.ProcessMaxRSSMB)},
			[2]string{"session failures", strconv.FormatUint(ua.SessionFailures, 10)},
			[2]string{"lost / dropped", fmt.Sprintf("%d / %d", res.Lost, res.Dropped)},
			[2]string{"broker", fmt.Sprintf("%s (QoS %d, %s mode, %s buffer)", res.Broker, res.QoS, res.Mode, res.Buffer)})
	}
	if res.OutageSeconds > 0 {
		rows = append(rows,
			[2]string{"outage", fmt.Sprintf("%.0f s, %d samples held on disk", res.OutageSeconds, res.HeldSamples)},
			[2]string{"drain", fmt.Sprintf("%.1f s at %.0f samples/s (%.1f× the live rate), after %.1f s of reconnect backoff",
				res.DrainSeconds, res.DrainSamplesPerSec, res.DrainVsLive, res.ReconnectSeconds)},
			[2]string{"live latency during drain", fmt.Sprintf("p50 %.2f / p99 %.2f ms", res.LiveP50DuringDrainMs, res.LiveP99DuringDrainMs)})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// servePeers is the child side: it serves the peers, prints their
// addresses as one JSON line, and runs until stdin closes or ctx ends.
func servePeers(ctx context.Context, o bench.Options, withBroker bool, stdout io.Writer) error {
	var peers bench.Peers
	if o.Source == "opcua" {
		rp, err := bench.StartOPCUAPeers(ctx, o.Items, o.ChangeInterval, withBroker, nil)
		if err != nil {
			return err
		}
		defer rp.Close()
		peers = rp.Peers
	} else {
		rp, err := bench.StartPeers(ctx, o.Devices, o.Tags, withBroker, nil)
		if err != nil {
			return err
		}
		defer rp.Close()
		peers = rp.Peers
	}
	if err := json.NewEncoder(stdout).Encode(peers); err != nil {
		return err
	}
	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	}
	return nil
}

// startPeerProcess runs `weir bench -peers` from this same binary so the
// load generators do not count towards the gateway's CPU and memory.
func startPeerProcess(ctx context.Context, devices, tags int, withBroker bool, stderr io.Writer) (bench.Peers, func(), error) {
	args := []string{"bench", "-peers", "-devices", strconv.Itoa(devices), "-tags", strconv.Itoa(tags)}
	return runPeerProcess(ctx, args, withBroker, func(p bench.Peers) bool { return len(p.Devices) == devices }, stderr)
}

// startOPCUAPeers starts the OPC UA mode's server (and broker, unless
// -broker is given) in a child process, or in this one with -in-process.
func startOPCUAPeers(ctx context.Context, o bench.Options, inProcess bool, stderr io.Writer) (bench.Peers, func(), error) {
	withBroker := o.Broker == ""
	change := o.OPCUAChangeInterval()
	if inProcess {
		rp, err := bench.StartOPCUAPeers(ctx, o.Items, change, withBroker, nil)
		if err != nil {
			return bench.Peers{}, nil, err
		}
		return rp.Peers, func() { rp.Close() }, nil
	}
	args := []string{"bench", "-peers", "-source", "opcua", "-items", strconv.Itoa(o.Items), "-change-interval", change.String()}
	return runPeerProcess(ctx, args, withBroker, func(p bench.Peers) bool { return p.OPCUA != "" }, stderr)
}

func firstDuration(a, b time.Duration) time.Duration {
	if a > 0 {
		return a
	}
	return b
}

// runPeerProcess runs `weir bench -peers args…` and reads the peers'
// addresses, which ok checks.
func runPeerProcess(ctx context.Context, args []string, withBroker bool, ok func(bench.Peers) bool, stderr io.Writer) (bench.Peers, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return bench.Peers{}, nil, fmt.Errorf("bench: find own binary: %w", err)
	}
	if withBroker {
		args = append(args, "-with-broker")
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return bench.Peers{}, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return bench.Peers{}, nil, err
	}
	if err := cmd.Start(); err != nil {
		return bench.Peers{}, nil, fmt.Errorf("bench: start peers: %w", err)
	}
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		stop()
		return bench.Peers{}, nil, fmt.Errorf("bench: peers did not report their addresses: %w", err)
	}
	var p bench.Peers
	if err := json.Unmarshal(line, &p); err != nil {
		stop()
		return bench.Peers{}, nil, fmt.Errorf("bench: peers: %w", err)
	}
	if !ok(p) {
		stop()
		return bench.Peers{}, nil, errors.New("bench: peers reported the wrong addresses")
	}
	return p, stop, nil
}
