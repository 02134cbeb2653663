package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The harness runs the real pipeline end to end and accounts for every
// sample: what was emitted is delivered (lost = 0) once the run drains.
func TestHarnessDeliversAndAccounts(t *testing.T) {
	for _, mode := range []string{"batch", "sample"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			peers, err := StartPeers(ctx, 4, 25, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer peers.Close()
			res, err := Run(ctx, Options{
				Devices: 4, Tags: 25, Rate: 1000, Duration: time.Second, Warmup: 300 * time.Millisecond,
				QoS: 1, Mode: mode,
			}, peers.Peers)
			if err != nil {
				t.Fatal(err)
			}
			if res.Delivered == 0 || res.SamplesPerSec <= 0 {
				t.Fatalf("nothing delivered: %+v", res)
			}
			if res.Lost != 0 || res.Dropped != 0 {
				t.Fatalf("lost %d dropped %d", res.Lost, res.Dropped)
			}
			if res.LatencyP50ms <= 0 || res.LatencyP99ms < res.LatencyP50ms || res.LatencyMaxms < res.LatencyP99ms {
				t.Fatalf("latency figures inconsistent: %+v", res)
			}
			if res.PeakRSSMB <= 0 || res.PollInterval != "100ms" {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func TestOptionsRejectImpossibleLoad(t *testing.T) {
	_, err := Run(context.Background(), Options{Devices: 1, Tags: 1, Rate: 1e6, Duration: time.Second}, Peers{Devices: []string{"x"}})
	if err == nil || !strings.Contains(err.Error(), "faster than 1ms") {
		t.Fatalf("err = %v", err)
	}
}

// With -routes 3 the run carries three sinks and reports each, the
// throughput and loss figures staying the measured sink's own.
func TestHarnessThreeRoutes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	peers, err := StartPeers(ctx, 5, 20, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peers.Close()
	res, err := Run(ctx, Options{Devices: 5, Tags: 20, Rate: 1000, Duration: time.Second, Warmup: 300 * time.Millisecond,
		QoS: 1, Routes: 3}, peers.Peers)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered == 0 || res.Lost != 0 || res.Dropped != 0 {
		t.Fatalf("delivered %d lost %d dropped %d", res.Delivered, res.Lost, res.Dropped)
	}
	if len(res.RouteSinks) != 3 {
		t.Fatalf("route sinks %+v", res.RouteSinks)
	}
	for i, rs := range res.RouteSinks {
		if rs.Sink != routeNames[i][0] {
			t.Errorf("row %d is %q, want %q", i, rs.Sink, routeNames[i][0])
		}
	}
	// The status is read while the engine pushes one batch to the sinks
	// in turn, so a sink may be one push (one device's 20 tags) ahead.
	for _, rs := range res.RouteSinks {
		if d := int64(rs.In) - int64(res.RouteSinks[0].In); rs.In == 0 || d > 20 || d < -20 {
			t.Errorf("%s: route in %d, want the same stream as bench (%d, give or take a push in flight)", rs.Sink, rs.In, res.RouteSinks[0].In)
		}
	}
	if dd := res.RouteSinks[1]; dd.Filtered == 0 || dd.Filtered >= dd.In {
		t.Errorf("bench-deadband selects a fifth of the devices: in %d, filtered %d", dd.In, dd.Filtered)
	}
	if res.RouteSinks[0].Written != res.Delivered {
		t.Errorf("the measured sink wrote %d, delivered says %d", res.RouteSinks[0].Written, res.Delivered)
	}
	// A 1-s run cannot show the 1-min window: its row says so, the
	// others carry no note.
	for _, rs := range res.RouteSinks {
		if got, want := rs.Note != "", rs.Sink == "bench-window"; got != want {
			t.Errorf("%s: note %q, want one: %v", rs.Sink, rs.Note, want)
		}
	}
	if n := res.RouteSinks[2].Note; !strings.Contains(n, "window 1m needs -duration ≥ 1m") {
		t.Errorf("bench-window note %q", n)
	}
}

func TestWindowNote(t *testing.T) {
	tests := []struct {
		size, duration time.Duration
		want           string // a part of the note; "" none
	}{
		{0, 20 * time.Second, ""},
		{time.Minute, time.Minute, ""},
		{time.Minute, 3 * time.Minute, ""},
		{time.Minute, 20 * time.Second, "window 1m needs -duration ≥ 1m (whole windows): this 20s run shows at most one emission, not the steady state; run -duration 2m"},
		{time.Minute, 90 * time.Second, "-duration 1m30s is not a whole number of windows, so the figure depends on where they fell; run -duration 2m"},
		{time.Hour, 90 * time.Minute, "run -duration 2h"},
		{10 * time.Second, 25 * time.Second, "run -duration 30s"},
	}
	for _, tc := range tests {
		got := WindowNote(tc.size, tc.duration)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("WindowNote(%s, %s) = %q, want %q", tc.size, tc.duration, got, tc.want)
		}
	}
}

func TestOptionsRejectRoutesElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"two routes", Options{Routes: 2}, "want 0"},
		{"opcua", Options{Routes: 3, Source: "opcua"}, "only with the modbus source"},
		{"outage", Options{Routes: 3, Outage: time.Second}, "not with routes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.setDefaults()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
