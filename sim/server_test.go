package sim

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

// TestReadEveryTagOverTCP reads each tag of the map with a real client,
// decodes it with the test's own decoder and compares with the model.
func TestReadEveryTagOverTCP(t *testing.T) {
	p := NewPlant(DemoPlantOptions(11))
	p.Step(17 * time.Minute)
	srv := serve(t, 0, Unit{ID: 1, Device: p})
	c := dial(t, srv.Addr())
	want := p.Values()
	for _, spec := range p.Tags() {
		t.Run(spec.Name, func(t *testing.T) {
			if got := readTag(t, c, spec); !matches(spec, got, want[spec.Name]) {
				t.Errorf("decoded %v (%T), model has %v (%T)", got, got, want[spec.Name], want[spec.Name])
			}
		})
	}
	t.Run("whole tables in one request each", func(t *testing.T) {
		for _, tc := range []struct {
			rt modbus.RegType
			n  int
		}{{modbus.INPUT_REGISTER, extent(p.specs, TableInput)}, {modbus.HOLDING_REGISTER, extent(p.specs, TableHolding)}} {
			if _, err := c.ReadRegisters(0, uint16(tc.n), tc.rt); err != nil {
				t.Errorf("read %d registers: %v", tc.n, err)
			}
		}
	})
}

func TestWritesOverTCP(t *testing.T) {
	p := NewPlant(PlantOptions{Seed: 21})
	srv := serve(t, 0, Unit{ID: 1, Device: p})
	c := dial(t, srv.Addr())

	t.Run("speed setpoint raises motor current", func(t *testing.T) {
		p.Step(time.Minute)
		before := p.Values()["motor_current"].(float64)
		if err := c.WriteRegister(0, 600); err != nil {
			t.Fatalf("write speed_setpoint: %v", err)
		}
		p.Step(time.Minute)
		if got := readTag(t, c, specByName(t, "speed_setpoint")); got != uint64(600) {
			t.Errorf("speed_setpoint reads %v", got)
		}
		if after := readTag(t, c, specByName(t, "motor_current")).(float64); after < before+2 {
			t.Errorf("motor_current %.2f → %.2f after speed 400 → 600", before, after)
		}
	})
	t.Run("temp setpoint float32 ABCD", func(t *testing.T) {
		if err := c.WriteFloat32(1, 72.5); err != nil {
			t.Fatal(err)
		}
		if got := p.Values()["temp_setpoint"]; got != 72.5 {
			t.Errorf("temp_setpoint = %v", got)
		}
	})
	t.Run("fill volume float32 DCBA", func(t *testing.T) {
		if err := c.WriteRegisters(3, []uint16{0x0000, 0x7a44}); err != nil { // 1000 = 0x447A0000
			t.Fatal(err)
		}
		if got := p.Values()["fill_volume"]; got != 1000.0 {
			t.Errorf("fill_volume = %v", got)
		}
	})
	t.Run("batch id string", func(t *testing.T) {
		if err := c.WriteRegisters(10, strRegs("LOT-2026-04", 8)); err != nil {
			t.Fatal(err)
		}
		if got := readTag(t, c, specByName(t, "batch_id")); got != "LOT-2026-04" {
			t.Errorf("batch_id reads %q", got)
		}
	})
	t.Run("run coil stops and starts the counter", func(t *testing.T) {
		if err := c.WriteCoil(0, false); err != nil {
			t.Fatal(err)
		}
		p.Step(time.Minute)
		n := readTag(t, c, specByName(t, "bottle_count"))
		p.Step(time.Minute)
		if got := readTag(t, c, specByName(t, "bottle_count")); got != n {
			t.Errorf("counter moved while stopped: %v → %v", n, got)
		}
		if err := c.WriteCoil(0, true); err != nil {
			t.Fatal(err)
		}
		p.Step(time.Minute)
		if got := readTag(t, c, specByName(t, "bottle_count")).(uint64); got <= n.(uint64) {
			t.Errorf("counter did not advance after start: %v → %v", n, got)
		}
		if got := readTag(t, c, specByName(t, "status_running")); got != true {
			t.Errorf("status_running = %v", got)
		}
	})
}

func TestExceptionsOverTCP(t *testing.T) {
	p := NewPlant(PlantOptions{Seed: 2})
	srv := serve(t, 0, Unit{ID: 1, Device: p})
	c := dial(t, srv.Addr())
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"speed out of range", func() error { return c.WriteRegister(0, 700) }, modbus.ErrIllegalDataValue},
		{"temp setpoint out of range", func() error { return c.WriteFloat32(1, 120) }, modbus.ErrIllegalDataValue},
		{"read-only holding register", func() error { return c.WriteRegister(20, 0x4142) }, modbus.ErrIllegalDataAddress},
		{"unmapped holding register", func() error { return c.WriteRegister(7, 1) }, modbus.ErrIllegalDataAddress},
		{"half of a float", func() error { return c.WriteRegister(2, 1) }, modbus.ErrIllegalDataAddress},
		{"coil past the map", func() error { return c.WriteCoil(3, true) }, modbus.ErrIllegalDataAddress},
		{"read past the input table", func() error { _, err := c.ReadRegisters(30, 3, modbus.INPUT_REGISTER); return err }, modbus.ErrIllegalDataAddress},
		{"read past the discrete inputs", func() error { _, err := c.ReadDiscreteInputs(0, 5); return err }, modbus.ErrIllegalDataAddress},
		{"unknown unit id", func() error {
			if err := c.SetUnitId(7); err != nil {
				return err
			}
			defer func() { _ = c.SetUnitId(1) }()
			_, err := c.ReadRegisters(0, 1, modbus.HOLDING_REGISTER)
			return err
		}, modbus.ErrGWTargetFailedToRespond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.Values()
			if err := tt.op(); err != tt.want {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			after := p.Values()
			for k, v := range before {
				if after[k] != v {
					t.Errorf("%s changed %v → %v on a refused request", k, v, after[k])
				}
			}
		})
	}
	if st := srv.Stats(); st.Exceptions != uint64(len(tests)) || st.Requests < st.Exceptions {
		t.Errorf("stats %+v, want %d exceptions", st, len(tests))
	}
}

func TestUnitRouting(t *testing.T) {
	p := NewPlant(PlantOptions{Seed: 1})
	b, err := NewBenchDevice(1, 10)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, 0, Unit{ID: 1, Device: p}, Unit{ID: 2, Device: b})
	c := dial(t, srv.Addr())
	if _, err := c.ReadRegisters(0, 36, modbus.HOLDING_REGISTER); err != nil {
		t.Errorf("unit 1 holding 0..35: %v", err)
	}
	if err := c.SetUnitId(2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegisters(0, 36, modbus.HOLDING_REGISTER); err != modbus.ErrIllegalDataAddress {
		t.Errorf("unit 2 (10 registers) holding 0..35: %v, want illegal data address", err)
	}
	regs, err := c.ReadRegisters(0, 10, modbus.HOLDING_REGISTER)
	if err != nil {
		t.Fatal(err)
	}
	if g := b.Generation(); regs[9] != b.ValueAt(9, g) {
		t.Errorf("unit 2 register 9 = %d, want bench value %d", regs[9], b.ValueAt(9, g))
	}
}

// signalDevice reports each Step of the wrapped device.
type signalDevice struct {
	*Plant
	stepped chan time.Duration
}

func (d signalDevice) Step(dt time.Duration) {
	d.Plant.Step(dt)
	select {
	case d.stepped <- dt:
	default:
	}
}

func TestServerTickerStepsAndContextStops(t *testing.T) {
	d := signalDevice{Plant: NewPlant(PlantOptions{Seed: 1}), stepped: make(chan time.Duration, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := Serve(ctx, "127.0.0.1:0", ServeOptions{Units: []Unit{{Device: d}}, Step: 10 * time.Millisecond}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case dt := <-d.stepped:
		if dt != 10*time.Millisecond {
			t.Errorf("stepped by %s, want the configured 10ms", dt)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the ticker never stepped the device")
	}
	cancel()
	select {
	case <-srv.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("server did not stop when ctx was cancelled")
	}
	if conn, err := net.Dial("tcp", srv.Addr()); err == nil {
		_ = conn.Close()
		t.Error("still accepting connections after ctx was cancelled")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close after ctx cancel: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestServeErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	p := NewPlant(PlantOptions{})
	tests := []struct {
		name string
		addr string
		opts ServeOptions
	}{
		{"no units", "127.0.0.1:0", ServeOptions{}},
		{"nil device", "127.0.0.1:0", ServeOptions{Units: []Unit{{ID: 1}}}},
		{"duplicate unit id", "127.0.0.1:0", ServeOptions{Units: []Unit{{ID: 1, Device: p}, {ID: 1, Device: p}}}},
		{"two wildcards", "127.0.0.1:0", ServeOptions{Units: []Unit{{Device: p}, {Device: p}}}},
		{"negative step", "127.0.0.1:0", ServeOptions{Units: []Unit{{Device: p}}, Step: -time.Second}},
		{"not host:port", "localhost", ServeOptions{Units: []Unit{{Device: p}}}},
		{"port in use", busy.Addr().String(), ServeOptions{Units: []Unit{{Device: p}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Serve(context.Background(), tt.addr, tt.opts, quietLog())
			if err == nil {
				_ = s.Close()
				t.Fatal("Serve succeeded")
			}
		})
	}
}

func TestServeManyBench(t *testing.T) {
	const nDev, nTags = 4, 200
	var devs []Device
	var benches []*BenchDevice
	for i := range nDev {
		d, err := NewBenchDevice(int64(i), nTags)
		if err != nil {
			t.Fatal(err)
		}
		devs, benches = append(devs, d), append(benches, d)
	}
	ss, err := ServeMany(context.Background(), "127.0.0.1", 0, devs, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ss.Close(); err != nil {
			t.Error(err)
		}
	})
	addrs := ss.Addrs()
	if len(slices.Compact(slices.Sorted(slices.Values(addrs)))) != nDev {
		t.Fatalf("addresses not distinct: %v", addrs)
	}
	for i, addr := range addrs {
		c := dial(t, addr)
		first, err := c.ReadRegisters(0, 125, modbus.HOLDING_REGISTER)
		if err != nil {
			t.Fatal(err)
		}
		g := benches[i].Generation()
		for r, v := range first {
			if v != benches[i].ValueAt(r, g) {
				t.Fatalf("device %d register %d = %d, want %d", i, r, v, benches[i].ValueAt(r, g))
			}
		}
		second, err := c.ReadRegisters(0, 125, modbus.HOLDING_REGISTER)
		if err != nil {
			t.Fatal(err)
		}
		for r := range first {
			if first[r] == second[r] {
				t.Fatalf("device %d register %d unchanged between reads", i, r)
			}
		}
		if _, err := c.ReadRegisters(100, 101, modbus.HOLDING_REGISTER); err != modbus.ErrIllegalDataAddress {
			t.Errorf("read past %d registers: %v", nTags, err)
		}
		if err := c.WriteRegister(0, 1); err != modbus.ErrIllegalDataAddress {
			t.Errorf("write to a bench register: %v", err)
		}
	}
}

// TestConcurrentReadsWhileStepping is for -race: clients read every table
// while the plant steps and another client writes setpoints.
func TestConcurrentReadsWhileStepping(t *testing.T) {
	p := NewPlant(DemoPlantOptions(5))
	srv := serve(t, 0, Unit{ID: 1, Device: p})
	const readers, reads = 4, 100
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, readers+1)
	clients := make([]*modbus.ModbusClient, readers+1)
	for i := range clients {
		clients[i] = dial(t, srv.Addr())
	}
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				p.Step(time.Second)
			}
		}
	})
	var rw sync.WaitGroup
	for i := range readers {
		c := clients[i]
		rw.Go(func() {
			for range reads {
				if _, err := c.ReadRegisters(0, 32, modbus.INPUT_REGISTER); err != nil {
					errs <- err
					return
				}
				if _, err := c.ReadDiscreteInputs(0, 4); err != nil {
					errs <- err
					return
				}
				if _, err := c.ReadCoils(0, 3); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	rw.Go(func() {
		c := clients[readers]
		for i := range reads {
			if err := c.WriteRegister(0, uint16(100+i)); err != nil {
				errs <- err
				return
			}
		}
	})
	rw.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p.Elapsed() == 0 {
		t.Error("the plant never stepped")
	}
}

func BenchmarkBenchDeviceRead125(b *testing.B) {
	d, err := NewBenchDevice(1, 200)
	if err != nil {
		b.Fatal(err)
	}
	req := &modbus.HoldingRegistersRequest{Addr: 0, Quantity: 125}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.HandleHoldingRegisters(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlantReadInputs(b *testing.B) {
	p := NewPlant(PlantOptions{Seed: 1})
	req := &modbus.InputRegistersRequest{Addr: 0, Quantity: 32}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.HandleInputRegisters(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlantStep1s(b *testing.B) {
	p := NewPlant(DemoPlantOptions(1))
	b.ReportAllocs()
	for b.Loop() {
		p.Step(time.Second)
	}
}

func BenchmarkTCPRead125(b *testing.B) {
	d, err := NewBenchDevice(1, 125)
	if err != nil {
		b.Fatal(err)
	}
	srv := serve(b, 0, Unit{Device: d})
	c := dial(b, srv.Addr())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReadRegisters(0, 125, modbus.HOLDING_REGISTER); err != nil {
			b.Fatal(err)
		}
	}
}
