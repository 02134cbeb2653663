package opcua

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sim"
	simopcua "github.com/weir-edge/weir/sim/opcua"
)

// writeSetup serves a stopped plant over OPC UA (security None) and runs
// a source with the plant's setpoints and one measurement.
func writeSetup(t *testing.T) (*sim.Plant, *Source) {
	t.Helper()
	plant := sim.NewPlant(sim.PlantOptions{Seed: 5, StartStopped: true})
	srv, err := simopcua.Serve(context.Background(), "127.0.0.1:0", plant, simopcua.Options{Refresh: 20 * time.Millisecond}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := insecure(srv.Endpoint())
	cfg.Subscriptions = []SubscriptionConfig{{PublishingInterval: 50 * time.Millisecond, Items: []ItemConfig{
		{Name: "speed_setpoint", NodeID: "ns=1;s=filler.speed_setpoint"},
		{Name: "temp_setpoint", NodeID: "nsu=urn:weir:sim;s=filler.temp_setpoint"},
		{Name: "run_cmd", NodeID: "ns=1;s=filler.run_cmd"},
		{Name: "batch_id", NodeID: "ns=1;s=filler.batch_id"},
		{Name: "product_temp", NodeID: "ns=1;s=filler.product_temp"},
		{Name: "missing", NodeID: "ns=1;s=filler.nope"},
	}}}
	return plant, mustNew(t, cfg)
}

func startAndWait(t *testing.T, src *Source) {
	t.Helper()
	rec := newRecorder()
	startSource(t, src, rec)
	rec.waitFor(t, 15*time.Second, "the first values", func() bool { return rec.count("plant/speed_setpoint") > 0 })
}

func TestWriteTagAgainstSim(t *testing.T) {
	plant, src := writeSetup(t)
	startAndWait(t, src)
	tests := []struct {
		path, tag string
		value     model.Value
		want      any
	}{
		{"plant/speed_setpoint", "speed_setpoint", model.Int(420), 420.0},    // UInt16
		{"plant/speed_setpoint", "speed_setpoint", model.Float(430), 430.0},  // whole float to UInt16
		{"plant/temp_setpoint", "temp_setpoint", model.Float(72.5), 72.5},    // Float
		{"plant/temp_setpoint", "temp_setpoint", model.Int(70), 70.0},        // int to Float
		{"plant/run_cmd", "run_cmd", model.Bool(true), true},                 // Boolean
		{"plant/batch_id", "batch_id", model.String("LOT-0042"), "LOT-0042"}, // String
	}
	for _, tt := range tests {
		t.Run(tt.path+"="+tt.value.String(), func(t *testing.T) {
			before := plant.Values()[tt.tag]
			old, err := src.WriteTag(context.Background(), tt.path, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if got := plant.Values()[tt.tag]; got != tt.want {
				t.Fatalf("plant holds %v, want %v", got, tt.want)
			}
			switch b := before.(type) {
			case float64:
				if f, _ := old.Float64(); math.Abs(f-b) > 1e-3 {
					t.Fatalf("old = %v, plant held %v", old, before)
				}
			case bool:
				if !old.Equal(model.Bool(b)) {
					t.Fatalf("old = %v, plant held %v", old, before)
				}
			}
		})
	}
}

func TestWriteTagRefusalsAgainstSim(t *testing.T) {
	plant, src := writeSetup(t)
	if _, err := src.WriteTag(context.Background(), "plant/speed_setpoint", model.Int(300)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("before Run: err = %v, want ErrNotConnected", err)
	}
	startAndWait(t, src)
	tests := []struct {
		name  string
		path  string
		value model.Value
		want  string
	}{
		{"unknown tag", "plant/nope", model.Int(1), "unknown tag"},
		{"unknown node", "plant/missing", model.Int(1), "BadNodeIDUnknown"},
		{"read-only", "plant/product_temp", model.Float(1), "read-only"},
		{"uint16 overflow", "plant/speed_setpoint", model.Int(70000), "out of range for Uint16"},
		{"negative to unsigned", "plant/speed_setpoint", model.Int(-1), "out of range"},
		{"fraction to integer", "plant/speed_setpoint", model.Float(300.5), "not an integer"},
		{"string to number", "plant/speed_setpoint", model.String("300"), "needs an integer"},
		{"number to bool", "plant/run_cmd", model.Int(1), "needs a bool"},
		{"float32 overflow", "plant/temp_setpoint", model.Float(1e300), "out of range for Float"},
		{"plant limit", "plant/speed_setpoint", model.Int(700), "write refused: BadOutOfRange"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := plant.Values()
			_, err := src.WriteTag(context.Background(), tt.path, tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			after := plant.Values()
			for _, k := range []string{"speed_setpoint", "temp_setpoint", "run_cmd", "batch_id"} {
				if after[k] != before[k] {
					t.Fatalf("%s changed from %v to %v", k, before[k], after[k])
				}
			}
		})
	}
}

func TestToNative(t *testing.T) {
	tests := []struct {
		in   model.Value
		typ  ua.TypeID
		want any
		err  string
	}{
		{model.Int(-128), ua.TypeIDSByte, int8(-128), ""},
		{model.Int(-129), ua.TypeIDSByte, nil, "out of range"},
		{model.Uint(255), ua.TypeIDByte, uint8(255), ""},
		{model.Int(math.MinInt64), ua.TypeIDInt64, int64(math.MinInt64), ""},
		{model.Uint(math.MaxUint64), ua.TypeIDUint64, uint64(math.MaxUint64), ""},
		{model.Uint(math.MaxUint64), ua.TypeIDInt64, nil, "out of range"},
		{model.Float(1e19), ua.TypeIDUint64, uint64(1e19), ""},
		{model.Float(-2), ua.TypeIDInt32, int32(-2), ""},
		{model.Float(-2), ua.TypeIDUint32, nil, "out of range"},
		{model.Float(2.5), ua.TypeIDDouble, 2.5, ""},
		{model.Bool(true), ua.TypeIDDouble, nil, "finite number"},
		{model.Float(math.Inf(1)), ua.TypeIDDouble, nil, "finite number"},
		{model.String("x"), ua.TypeIDString, "x", ""},
		{model.String("x"), ua.TypeIDDateTime, nil, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.in.String()+"→"+tt.typ.String(), func(t *testing.T) {
			got, err := toNative(tt.in, tt.typ)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}
