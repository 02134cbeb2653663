package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/weir-edge/weir/bench"
)

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var o bench.Options
	fs.IntVar(&o.Devices, "devices", 50, "simulated Modbus devices")
	fs.IntVar(&o.Tags, "tags", 200, "tags (holding registers) per device")
	fs.Float64Var(&o.Rate, "rate", 100_000, "offered samples per second (open loop)")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "measured window")
	fs.DurationVar(&o.Warmup, "warmup", 3*time.Second, "run before measuring")
	fs.IntVar(&o.QoS, "qos", 1, "MQTT QoS, 0 or 1")
	fs.StringVar(&o.Mode, "mode", "batch", "MQTT sink mode: batch (one message per device per cycle) or sample")
	fs.StringVar(&o.Broker, "broker", "", "host:port of an MQTT broker (default: an embedded broker in the peer process)")
	fs.StringVar(&o.ProtocolVersion, "protocol", "5", "MQTT protocol version: 5 or 3.1.1")
	fs.StringVar(&o.Buffer, "buffer", "disk", "sink buffer: disk (durable, fsync group, in a temporary directory) or memory")
	fs.DurationVar(&o.Outage, "outage", 0, "after the window, cut the uplink to the broker this long and measure the backlog drain")
	fs.Float64Var(&o.DrainRate, "drain-rate", 0, "backlog replay rate with -outage (default 5× -rate)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	inProcess := fs.Bool("in-process", false, "run devices and broker inside this process (CPU/RSS then include them)")
	peersOnly := fs.Bool("peers", false, "internal: serve the load peers and print their addresses as JSON")
	withBroker := fs.Bool("with-broker", false, "internal: with -peers, also run an embedded broker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *peersOnly {
		return servePeers(ctx, o.Devices, o.Tags, *withBroker, stdout)
	}
	var peers bench.Peers
	if *inProcess {
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
	fmt.Fprintf(stderr, "weir bench: %d devices × %d tags, poll every %s (offered %.0f samples/s), QoS %d, %s mode, %s warm-up + %s\n",
		o.Devices, o.Tags, o.PollInterval(), o.Rate, o.QoS, o.Mode, o.Warmup, o.Duration)
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
func servePeers(ctx context.Context, devices, tags int, withBroker bool, stdout io.Writer) error {
	rp, err := bench.StartPeers(ctx, devices, tags, withBroker, nil)
	if err != nil {
		return err
	}
	defer rp.Close()
	if err := json.NewEncoder(stdout).Encode(rp.Peers); err != nil {
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
	exe, err := os.Executable()
	if err != nil {
		return bench.Peers{}, nil, fmt.Errorf("bench: find own binary: %w", err)
	}
	args := []string{"bench", "-peers", "-devices", strconv.Itoa(devices), "-tags", strconv.Itoa(tags)}
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
	if len(p.Devices) != devices {
		stop()
		return bench.Peers{}, nil, errors.New("bench: peers reported the wrong number of devices")
	}
	return p, stop, nil
}
