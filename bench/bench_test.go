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
	for _, rs := range res.RouteSinks {
		if rs.In == 0 || rs.In != res.RouteSinks[0].In {
			t.Errorf("%s: route in %d, want the same stream as bench (%d)", rs.Sink, rs.In, res.RouteSinks[0].In)
		}
	}
	if dd := res.RouteSinks[1]; dd.Filtered == 0 || dd.Filtered >= dd.In {
		t.Errorf("bench-deadband selects a fifth of the devices: in %d, filtered %d", dd.In, dd.Filtered)
	}
	if res.RouteSinks[0].Written != res.Delivered {
		t.Errorf("the measured sink wrote %d, delivered says %d", res.RouteSinks[0].Written, res.Delivered)
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
