package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/bench"
)

// weir bench -bandwidth -json prints one result with a row per sink; the
// table form names every sink; flags of the throughput run that cannot
// apply are refused as usage errors.
func TestBenchBandwidthCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string, err error)
	}{
		{"json", []string{"-bandwidth", "-duration", "2s", "-warmup", "1s", "-json"}, func(t *testing.T, out string, err error) {
			if err != nil {
				t.Fatal(err)
			}
			var res bench.BandwidthResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("not one JSON object: %v\n%s", err, out)
			}
			if res.Source != "demo" || res.SourceSamples == 0 || len(res.Sinks) < 6 || res.Sinks[0].Sink != "json-sample" {
				t.Fatalf("result %+v", res)
			}
			// 2 s cannot show a 1-min window: its row says so, no other.
			for _, s := range res.Sinks {
				if got, want := s.Note != "", s.Sink == "json-window"; got != want {
					t.Errorf("%s: note %q, want one: %v", s.Sink, s.Note, want)
				}
			}
		}},
		{"table", []string{"-bandwidth", "-duration", "2s", "-warmup", "1s"}, func(t *testing.T, out string, err error) {
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"bytes/source sample", "json-batch", "sparkplug", "json-window", "(see note)",
				"note: window 1m needs -duration ≥ 1m (whole windows): this 2s run shows at most one emission, not the steady state; run -duration 2m"} {
				if !strings.Contains(out, want) {
					t.Errorf("table lacks %q:\n%s", want, out)
				}
			}
		}},
		{"broker refused", []string{"-bandwidth", "-broker", "127.0.0.1:1883"}, func(t *testing.T, out string, err error) {
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "-broker does not apply") {
				t.Fatalf("err = %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runNamed(ctx, "bench", tc.args, &stdout, &stderr)
			tc.check(t, stdout.String(), err)
		})
	}
}
