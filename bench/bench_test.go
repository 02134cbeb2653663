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
