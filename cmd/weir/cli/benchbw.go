package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/weir-edge/weir/bench"
)

// runBandwidth is `weir bench -bandwidth`: the flags it shares with the
// throughput run keep their meaning, but their defaults fit a eight-sink
// comparison rather than a saturation test (set is the flags given).
func runBandwidth(ctx context.Context, o bench.Options, set map[string]bool, asJSON bool, stdout, stderr io.Writer) error {
	bo := bench.BandwidthOptions{Source: "demo"}
	if set["source"] {
		bo.Source = o.Source
	}
	if set["devices"] {
		bo.Devices = o.Devices
	}
	if set["tags"] {
		bo.Tags = o.Tags
	}
	if set["rate"] {
		bo.Rate = o.Rate
	}
	if set["duration"] {
		bo.Duration = o.Duration
	}
	if set["warmup"] {
		bo.Warmup = o.Warmup
	}
	for _, f := range []string{"broker", "outage", "qos", "mode", "buffer", "protocol", "aligned", "items", "in-process"} {
		if set[f] {
			return fmt.Errorf("bench: -%s does not apply to -bandwidth (it runs its own broker and sinks): %w", f, errUsage)
		}
	}
	fmt.Fprintf(stderr, "weir bench -bandwidth: source %s, eight sinks side by side, bytes counted at an embedded broker; %s warm-up + %s\n",
		firstNonEmpty(bo.Source, "demo"), durationOr(bo.Warmup, 5*time.Second), durationOr(bo.Duration, time.Minute))
	res, err := bench.RunBandwidth(ctx, bo)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "source %s: %d tags polled every %s; %d samples in %s (%.0f/s); load average %s\n",
		res.Source, res.Tags, res.PollInterval, res.SourceSamples, res.Window, res.SamplesPerSec, res.LoadAverage)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sink\tsamples out\tmessages\tbytes up\tbytes/msg\tbytes/source sample\tsaving vs JSON per tag\tbytes down\tsink's wire_bytes\t")
	for _, s := range res.Sinks {
		saving := fmt.Sprintf("%.1f%%", s.SavingPercent)
		if !s.RouteApplied {
			saving = "route not in this build"
		} else if s.Note != "" {
			saving += " (see note)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%.1f\t%s\t%d\t%d\t\n",
			s.Sink, s.SamplesWritten, s.Messages, s.UpBytes, s.BytesPerMessage, s.BytesPerSourceSample, saving, s.DownBytes, s.SinkWireBytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range res.Sinks {
		fmt.Fprintf(stdout, "  %-18s %s; route: %s\n", s.Sink, s.Encoding, s.Route)
		if s.Note != "" {
			fmt.Fprintf(stdout, "  %-18s note: %s\n", "", s.Note)
		}
	}
	return nil
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
