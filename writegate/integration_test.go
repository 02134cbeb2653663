package writegate_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sim"
	"github.com/weir-edge/weir/sources/modbus"
	"github.com/weir-edge/weir/writegate"
)

type discard struct{}

func (discard) Emit(context.Context, []model.Sample) error { return nil }

const ns = "acme/plant1/filling/line1/filler"

// TestGateOverModbusSimulator runs the gate in front of a Modbus source
// polling the simulated plant: denied writes never reach the simulator
// (its request counter does not move), allowed ones change the plant, and
// the trail records every attempt in a chain that verifies.
func TestGateOverModbusSimulator(t *testing.T) {
	plant := sim.NewPlant(sim.PlantOptions{Seed: 1, StartStopped: true})
	srv, err := sim.Serve(context.Background(), "127.0.0.1:0", sim.ServeOptions{Units: []sim.Unit{{Device: plant}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	src, err := modbus.New(modbus.Config{Devices: []modbus.DeviceConfig{{
		Name: "plc", Address: srv.Addr(), Namespace: ns, Timeout: time.Second,
		// One poll at start, the next in an hour: every later request is a write's.
		Groups: []modbus.GroupConfig{{Interval: time.Hour, Tags: []modbus.TagConfig{
			{Name: "speed_setpoint", Table: "holding", Address: 0, Type: "uint16"},
			{Name: "temp_setpoint", Table: "holding", Address: 1, Type: "float32"},
		}}},
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { src.Run(ctx, discard{}) })
	defer wg.Wait()
	defer cancel()
	// The device state emits nothing: poll it.
	tick, deadline := time.NewTicker(5*time.Millisecond), time.After(2*time.Minute) // bounds a hang only
	for src.Status().State != pipeline.StateRunning {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("source did not come up")
		}
	}
	tick.Stop()

	trailPath := filepath.Join(t.TempDir(), "audit.jsonl")
	trail, err := audit.Open(audit.Config{File: trailPath}, nil)
	if err != nil {
		t.Fatal(err)
	}
	min, max := 60.0, 600.0
	gate, err := writegate.New(writegate.Config{Policies: []writegate.Policy{{
		Match: "acme/plant1/filling/+/filler/speed_setpoint", Allow: true, Callers: []string{"api:*", "rule:overheat"},
		Type: "int", Min: &min, Max: &max, MaxRate: "2/min", MaxAge: 5 * time.Second,
	}}}, trail, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	gate.SetClock(func() time.Time { return now })
	if err := gate.Register(ns, src); err != nil {
		t.Fatal(err)
	}

	speed := ns + "/speed_setpoint"
	tests := []struct {
		name   string
		req    writegate.Request
		reason string // "" = allowed
		want   float64
	}{
		{"no policy", writegate.Request{Path: ns + "/temp_setpoint", Value: model.Float(70), Caller: "api:alice"}, "no policy allows writes to " + ns + "/temp_setpoint", 0},
		{"out of range", writegate.Request{Path: speed, Value: model.Int(700), Caller: "api:alice"}, "value 700 outside 60..600", 0},
		{"wrong caller", writegate.Request{Path: speed, Value: model.Int(300), Caller: "rule:x"}, "caller rule:x not allowed", 0},
		{"stale", writegate.Request{Path: speed, Value: model.Int(300), Caller: "api:alice", IssuedAt: now.Add(-12 * time.Second)}, "command issued 12s ago, older than max_age 5s", 0},
		{"allowed 1", writegate.Request{Path: speed, Value: model.Int(300), Caller: "api:alice"}, "", 300},
		{"allowed 2", writegate.Request{Path: speed, Value: model.Int(420), Caller: "rule:overheat"}, "", 420},
		{"rate exceeded", writegate.Request{Path: speed, Value: model.Int(500), Caller: "api:bob"}, "rate limit 2/min exceeded", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.IssuedAt.IsZero() {
				tt.req.IssuedAt = now
			}
			before := srv.Stats().Requests
			valBefore := plant.Values()["speed_setpoint"]
			res, err := gate.Write(context.Background(), tt.req)
			sent := srv.Stats().Requests - before
			if tt.reason != "" {
				if !errors.Is(err, writegate.ErrDenied) || err.Error() != tt.reason {
					t.Fatalf("err = %v, want %q", err, tt.reason)
				}
				if sent != 0 || plant.Values()["speed_setpoint"] != valBefore {
					t.Fatalf("%d requests reached the simulator", sent)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sent != 3 || plant.Values()["speed_setpoint"] != tt.want || res.Result != audit.Allowed {
				t.Fatalf("sent %d, plant %v, result %+v", sent, plant.Values()["speed_setpoint"], res)
			}
		})
	}
	trail.Close()
	if n, err := audit.Verify(trailPath); err != nil || n != len(tests) {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	trail, err = audit.Open(audit.Config{File: trailPath}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	entries, _ := trail.Tail(100)
	for i, e := range entries {
		want := audit.Denied
		if tests[i].reason == "" {
			want = audit.Allowed
		}
		if e.Result != want || !strings.HasPrefix(e.Reason, tests[i].reason) || e.Caller != tests[i].req.Caller {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	if !entries[5].Old.Equal(model.Int(300)) {
		t.Errorf("old value of the second write = %v, want 300", entries[5].Old)
	}
}
