package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A short bandwidth run on the demo plant yields one row per sink, in the
// declared order, every sink heard at the broker, with figures that are
// consistent with each other. Speed and sizes are not asserted.
func TestBandwidthRunStructure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunBandwidth(ctx, BandwidthOptions{Duration: 3 * time.Second, Warmup: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != "demo" || res.SourceSamples == 0 || res.Tags == 0 {
		t.Fatalf("result %+v", res)
	}
	want := bandwidthSinks("x")
	if len(res.Sinks) != len(want) {
		t.Fatalf("%d sink rows, want %d", len(res.Sinks), len(want))
	}
	for i, s := range res.Sinks {
		if s.Sink != want[i].name {
			t.Errorf("row %d is %q, want %q", i, s.Sink, want[i].name)
		}
		if !s.RouteApplied {
			t.Errorf("%s: the engine reports no route counters", s.Sink)
		}
		// A window or downsample route may emit nothing in a few seconds.
		if s.UpBytes == 0 && (s.Route == "all" || strings.HasPrefix(s.Route, "deadband")) {
			t.Errorf("%s: no bytes counted at the broker in the window", s.Sink)
		}
		if got := float64(s.UpBytes) / float64(res.SourceSamples); got != s.BytesPerSourceSample {
			t.Errorf("%s: bytes per sample %v, want %v", s.Sink, s.BytesPerSourceSample, got)
		}
		if s.Messages > 0 && s.BytesPerMessage <= 0 {
			t.Errorf("%s: %d messages of %v bytes", s.Sink, s.Messages, s.BytesPerMessage)
		}
	}
	base := res.Sinks[0]
	if base.Messages == 0 || base.SamplesWritten == 0 || base.SavingPercent != 0 {
		t.Errorf("baseline %+v", base)
	}
}

func TestBandwidthOptionsRefuseWhatDoesNotApply(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    BandwidthOptions
		want string
	}{
		{"rate with the demo", BandwidthOptions{Rate: 5000}, "modbus source's"},
		{"unknown source", BandwidthOptions{Source: "opcua"}, "want demo or modbus"},
		{"impossible load", BandwidthOptions{Source: "modbus", Devices: 1, Tags: 1, Rate: 1e6}, "faster than 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.setDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
