package bench

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// The OPC UA mode runs the real pipeline from the simulator's OPC UA server
// to the broker and accounts for every sample, with either buffer. No
// timing is asserted: the figures are what `weir bench -source opcua`
// reports.
func TestOPCUAHarnessDelivers(t *testing.T) {
	for _, buf := range []string{"memory", "disk"} {
		t.Run(buf, func(t *testing.T) {
			ctx := context.Background()
			const items = 20
			o := Options{
				Source: "opcua", Items: items, PublishingInterval: 50 * time.Millisecond,
				Duration: time.Second, Warmup: 200 * time.Millisecond, QoS: 1, Buffer: buf,
			}
			peers, err := StartOPCUAPeers(ctx, items, o.OPCUAChangeInterval(), true, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer peers.Close()
			res, err := Run(ctx, o, peers.Peers)
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != "opcua" || res.OPCUA == nil {
				t.Fatalf("no OPC UA figures: %+v", res)
			}
			if res.Delivered == 0 || res.SamplesPerSec <= 0 || res.OPCUA.NotificationsPerS <= 0 {
				t.Fatalf("nothing delivered: %+v %+v", res, *res.OPCUA)
			}
			if res.Lost != 0 || res.Dropped != 0 || peers.Dropped() != 0 {
				t.Fatalf("lost %d dropped %d, server dropped %d", res.Lost, res.Dropped, peers.Dropped())
			}
			if res.OPCUA.SessionFailures != 0 || res.OPCUA.Items != items || res.OPCUA.RevisedPublishing != "50ms" {
				t.Fatalf("OPC UA figures %+v", *res.OPCUA)
			}
			if res.LatencyP50ms <= 0 || res.LatencyP99ms < res.LatencyP50ms || res.LatencyMaxms < res.LatencyP99ms ||
				res.OPCUA.ReceiptP99ms < res.OPCUA.ReceiptP50ms {
				t.Fatalf("latency figures inconsistent: %+v %+v", res, *res.OPCUA)
			}
			// Weir's share is part of the whole: arrival → PUBACK cannot
			// exceed source timestamp → PUBACK (one histogram bucket's
			// slack: both are bucketed).
			if g := res.OPCUA; g.GatewayP50ms <= 0 || g.GatewayP99ms < g.GatewayP50ms || g.GatewayMaxms > res.LatencyMaxms*1.1 {
				t.Fatalf("gateway latency inconsistent: %+v (end to end max %v)", *g, res.LatencyMaxms)
			}
			if got, want := res.OPCUA.BeyondP99ms, res.LatencyP99ms-50; math.Abs(got-want) > 1e-6 {
				t.Fatalf("beyond p99 = %v, want p99 − publishing interval = %v", got, want)
			}
		})
	}
}

func TestOPCUAOptions(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		peers   Peers
		wantErr string
	}{
		{"no server", Options{Source: "opcua"}, Peers{Broker: "x"}, "no OPC UA server"},
		{"too many items", Options{Source: "opcua", Items: maxOPCUAItems + 1}, Peers{OPCUA: "opc.tcp://x"}, "at most"},
		{"interval too short", Options{Source: "opcua", PublishingInterval: time.Millisecond}, Peers{OPCUA: "opc.tcp://x"}, "at least 10ms"},
		{"unknown source", Options{Source: "s7"}, Peers{}, "want modbus or opcua"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.o, tc.peers)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestOPCUAChangeInterval(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want time.Duration
	}{
		{"default", Options{}, 103125 * time.Microsecond},
		{"from publishing", Options{PublishingInterval: 320 * time.Millisecond}, 330 * time.Millisecond},
		{"from sampling", Options{PublishingInterval: time.Second, SamplingInterval: 64 * time.Millisecond}, 66 * time.Millisecond},
		{"explicit", Options{SamplingInterval: 64 * time.Millisecond, ChangeInterval: 50 * time.Millisecond}, 50 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.OPCUAChangeInterval(); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// The generated configuration subscribes every item once, grouped into
// assets of itemsPerAsset, and is accepted by the loader (Run parses it).
func TestOPCUAConfigYAML(t *testing.T) {
	o := Options{Source: "opcua", Items: 250, DataDir: "/x", Buffer: "memory"}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	text := opcuaConfigYAML(o, "opc.tcp://127.0.0.1:4840", "127.0.0.1:1883")
	for _, want := range []string{"security_policy: None", "publishing_interval: 100ms", "g002/i00249", `"ns=1;s=bench.00249"`, "sampling_interval: 100ms"} {
		if !strings.Contains(text, want) {
			t.Errorf("configuration lacks %q", want)
		}
	}
	if n := strings.Count(text, "node_id:"); n != 250 {
		t.Errorf("%d items, want 250", n)
	}
}
