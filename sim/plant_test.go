package sim

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/weir-edge/weir/model"
)

// image returns copies of the plant's four tables.
func snapshotImage(p *Plant) image {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return image{
		coils:     append([]bool(nil), p.img.coils...),
		discretes: append([]bool(nil), p.img.discretes...),
		holding:   append([]uint16(nil), p.img.holding...),
		input:     append([]uint16(nil), p.img.input...),
	}
}

func TestDeterminism(t *testing.T) {
	opts := PlantOptions{Seed: 42, FaultMTBF: 5 * time.Minute, AutoRestart: 20 * time.Second}
	tests := []struct {
		name   string
		slices []time.Duration // how the same 30 minutes is stepped
	}{
		{"one step", []time.Duration{30 * time.Minute}},
		{"quanta", repeat(Quantum, 18000)},
		{"uneven", append(repeat(250*time.Millisecond, 7200), 0)},
		{"seconds", repeat(time.Second, 1800)},
	}
	ref := NewPlant(opts)
	var refImgs []image
	for range 6 {
		ref.Step(5 * time.Minute)
		refImgs = append(refImgs, snapshotImage(ref))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlant(opts)
			var total time.Duration
			for _, d := range tt.slices {
				p.Step(d)
				total += d
			}
			if p.Elapsed() != 30*time.Minute {
				t.Fatalf("Elapsed = %s after stepping %s, want 30m", p.Elapsed(), total)
			}
			if got := snapshotImage(p); !reflect.DeepEqual(got, refImgs[5]) {
				t.Errorf("register image after %q differs from the reference", tt.name)
			}
		})
	}
	t.Run("same seed same sequence", func(t *testing.T) {
		p := NewPlant(opts)
		for i := range 6 {
			p.Step(5 * time.Minute)
			if !reflect.DeepEqual(snapshotImage(p), refImgs[i]) {
				t.Fatalf("step %d differs", i)
			}
		}
	})
	t.Run("other seed differs", func(t *testing.T) {
		o := opts
		o.Seed = 43
		p := NewPlant(o)
		p.Step(5 * time.Minute)
		if reflect.DeepEqual(snapshotImage(p).input, refImgs[0].input) {
			t.Error("seeds 42 and 43 gave the same input registers")
		}
	})
}

func repeat(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}

// TestPlausibleRanges runs a demo plant for simulated hours and checks every
// measurement stays physical.
func TestPlausibleRanges(t *testing.T) {
	ranges := map[string][2]float64{
		"product_temp":   {15, 99},
		"temp_deviation": {-15, 5},
		"motor_current":  {0, 25},
		"vibration":      {0, 11},
		"line_speed":     {0, SpeedMax},
		"tank_level":     {0, 100},
		"heater_output":  {0, 100},
		"ambient_temp":   {10, 35},
		"fill_weight":    {100, 2200},
		"machine_state":  {0, 2},
		"fault_code":     {0, 4},
	}
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			p := NewPlant(DemoPlantOptions(seed))
			prev := p.Values()
			var running, faulted bool
			for range 8 * 60 { // 8 h in 1-minute steps
				p.Step(time.Minute)
				v := p.Values()
				for name, r := range ranges {
					if f := v[name].(float64); f < r[0] || f > r[1] || math.IsNaN(f) {
						t.Fatalf("%s after %s = %g, want within %v", name, p.Elapsed(), f, r)
					}
				}
				if v["bottle_count"].(uint64) < prev["bottle_count"].(uint64) {
					t.Fatalf("bottle_count went backwards without wrapping: %v → %v", prev["bottle_count"], v["bottle_count"])
				}
				if v["run_hours"].(float64) < prev["run_hours"].(float64) || v["energy_total"].(uint64) < prev["energy_total"].(uint64) {
					t.Fatal("a total went backwards")
				}
				running = running || p.State() == StateRunning
				faulted = faulted || p.State() == StateFault
				prev = v
			}
			if !running || !faulted {
				t.Errorf("over 8 h with MTBF 20m: running=%v faulted=%v, want both", running, faulted)
			}
		})
	}
}

func TestCurrentAndVibrationRiseWithSpeedAndWear(t *testing.T) {
	mean := func(p *Plant, name string) float64 {
		sum := 0.0
		for range 100 {
			p.Step(time.Second)
			sum += p.Values()[name].(float64)
		}
		return sum / 100
	}
	at := func(speed, wear float64) (cur, vib float64) {
		p := NewPlant(PlantOptions{Seed: 7})
		p.mu.Lock()
		p.st.speedSP, p.st.speed, p.st.wear = speed, speed, wear
		p.mu.Unlock()
		return mean(p, "motor_current"), mean(p, "vibration")
	}
	c1, v1 := at(200, 0.1)
	c2, v2 := at(600, 0.1)
	c3, v3 := at(600, 0.5)
	if c2 <= c1 || v2 <= v1 {
		t.Errorf("speed 200→600: current %.2f→%.2f, vibration %.2f→%.2f; want both to rise", c1, c2, v1, v2)
	}
	if c3 <= c2 || v3 <= v2 {
		t.Errorf("wear 0.1→0.5: current %.2f→%.2f, vibration %.2f→%.2f; want both to rise", c2, c3, v2, v3)
	}
}

func TestHeaterFollowsSetpoint(t *testing.T) {
	p := NewPlant(PlantOptions{Seed: 3, StartStopped: true})
	if err := p.writeHolding(1, f32ABCD(60)); err != nil {
		t.Fatalf("write temp_setpoint: %v", err)
	}
	p.Step(30 * time.Minute)
	if got := p.Values()["product_temp"].(float64); math.Abs(got-60) > 1 {
		t.Errorf("product_temp 30 min after setpoint 60 = %.2f", got)
	}
	if err := p.writeCoils(1, []bool{false}); err != nil {
		t.Fatalf("write heater_enable: %v", err)
	}
	p.Step(30 * time.Minute)
	if got := p.Values()["product_temp"].(float64); got > 55 {
		t.Errorf("product_temp 30 min after heater off = %.2f, want cooling", got)
	}
}

func f32ABCD(f float32) []uint16 {
	b := math.Float32bits(f)
	return []uint16{uint16(b >> 16), uint16(b)}
}

func TestBottleCounterRunsAndWraps(t *testing.T) {
	p := NewPlant(PlantOptions{Seed: 1})
	p.mu.Lock()
	p.st.bottles = math.MaxUint32 - 5
	p.st.speedSP, p.st.speed = 600, 600 // 10 bottles/s
	p.mu.Unlock()
	p.Step(2 * time.Second)
	if got := p.Values()["bottle_count"].(uint64); got != 14 {
		t.Errorf("bottle_count after 20 bottles from 2^32-6 = %d, want 14", got)
	}
	if err := p.writeCoils(0, []bool{false}); err != nil {
		t.Fatal(err)
	}
	p.Step(10 * time.Second) // ramp down at 100 bpm/s
	stopped := p.Values()["bottle_count"].(uint64)
	p.Step(time.Minute)
	if got := p.Values()["bottle_count"].(uint64); got != stopped {
		t.Errorf("bottle_count moved while stopped: %d → %d", stopped, got)
	}
	if p.State() != StateStopped {
		t.Errorf("state = %s, want stopped", p.State())
	}
}

func TestFaults(t *testing.T) {
	t.Run("latched until reset", func(t *testing.T) {
		p := NewPlant(PlantOptions{Seed: 5, FaultMTBF: time.Minute})
		stepUntil(t, p, StateFault)
		v := p.Values()
		if v["fault_active"] != true || v["run_cmd"] != false || v["fault_code"].(float64) == 0 {
			t.Fatalf("after trip: fault_active=%v run_cmd=%v fault_code=%v", v["fault_active"], v["run_cmd"], v["fault_code"])
		}
		if err := p.writeCoils(0, []bool{true}); err != nil {
			t.Fatal(err)
		}
		p.Step(time.Hour)
		if p.State() != StateFault || p.Values()["line_speed"].(float64) != 0 {
			t.Fatalf("a start while faulted was not ignored: state %s", p.State())
		}
		if err := p.writeCoils(2, []bool{true}); err != nil {
			t.Fatal(err)
		}
		if p.State() != StateStopped || p.Values()["fault_code"].(float64) != 0 {
			t.Fatalf("after fault_reset: state %s", p.State())
		}
		if err := p.writeCoils(0, []bool{true}); err != nil {
			t.Fatal(err)
		}
		if p.State() != StateRunning {
			t.Fatalf("after run_cmd: state %s", p.State())
		}
	})
	t.Run("auto restart", func(t *testing.T) {
		p := NewPlant(PlantOptions{Seed: 5, FaultMTBF: time.Minute, AutoRestart: 10 * time.Second})
		stepUntil(t, p, StateFault)
		p.Step(10 * time.Second)
		if p.State() != StateRunning {
			t.Fatalf("10s after a fault with AutoRestart 10s: state %s", p.State())
		}
	})
	t.Run("vibration trip from wear", func(t *testing.T) {
		p := NewPlant(PlantOptions{Seed: 5})
		p.mu.Lock()
		p.st.wear, p.st.speed, p.st.speedSP = 0.8, 600, 600
		p.mu.Unlock()
		p.Step(time.Second)
		if v := p.Values(); p.State() != StateFault || v["fault_code"].(float64) != FaultVibration || v["alarm_high_vibration"] != true {
			t.Fatalf("worn filler at full speed: state %s, fault %v", p.State(), v["fault_code"])
		}
	})
	t.Run("no random faults without MTBF", func(t *testing.T) {
		p := NewPlant(PlantOptions{Seed: 5})
		p.Step(4 * time.Hour)
		if p.State() != StateRunning {
			t.Fatalf("state %s", p.State())
		}
	})
}

func stepUntil(t *testing.T, p *Plant, want State) {
	t.Helper()
	for range 3600 {
		p.Step(time.Second)
		if p.State() == want {
			return
		}
	}
	t.Fatalf("state %s not reached in an hour", want)
}

func TestWritesInProcess(t *testing.T) {
	tests := []struct {
		name    string
		write   func(p *Plant) error
		wantErr error
		check   func(v map[string]any) bool
	}{
		{"speed setpoint", func(p *Plant) error { return p.writeHolding(0, []uint16{250}) }, nil,
			func(v map[string]any) bool { return v["speed_setpoint"] == 250.0 }},
		{"speed below range", func(p *Plant) error { return p.writeHolding(0, []uint16{59}) }, modbus.ErrIllegalDataValue, nil},
		{"speed above range", func(p *Plant) error { return p.writeHolding(0, []uint16{601}) }, modbus.ErrIllegalDataValue, nil},
		{"temp setpoint NaN", func(p *Plant) error { return p.writeHolding(1, []uint16{0x7fc0, 0}) }, modbus.ErrIllegalDataValue, nil},
		{"half a float", func(p *Plant) error { return p.writeHolding(1, []uint16{0x4248}) }, modbus.ErrIllegalDataAddress, nil},
		{"three setpoints at once", func(p *Plant) error {
			return p.writeHolding(0, append(append([]uint16{300}, f32ABCD(70)...), 0x0000, 0xfa43)) // 500 ml DCBA: bytes 00 00 FA 43
		}, nil, func(v map[string]any) bool {
			return v["speed_setpoint"] == 300.0 && v["temp_setpoint"] == 70.0 && v["fill_volume"] == 500.0
		}},
		{"one bad value refuses the whole write", func(p *Plant) error {
			return p.writeHolding(0, append([]uint16{300}, f32ABCD(200)...))
		}, modbus.ErrIllegalDataValue, func(v map[string]any) bool { return v["speed_setpoint"] == 400.0 }},
		{"batch id", func(p *Plant) error { return p.writeHolding(10, strRegs("LOT-77", 8)) }, nil,
			func(v map[string]any) bool { return v["batch_id"] == "LOT-77" }},
		{"batch id control char", func(p *Plant) error { return p.writeHolding(10, strRegs("A\x01", 8)) }, modbus.ErrIllegalDataValue, nil},
		{"read-only product name", func(p *Plant) error { return p.writeHolding(20, strRegs("x", 16)) }, modbus.ErrIllegalDataAddress, nil},
		{"unmapped gap", func(p *Plant) error { return p.writeHolding(5, []uint16{1}) }, modbus.ErrIllegalDataAddress, nil},
		{"past the table", func(p *Plant) error { return p.writeHolding(36, []uint16{1}) }, modbus.ErrIllegalDataAddress, nil},
		{"coils run and heater", func(p *Plant) error { return p.writeCoils(0, []bool{false, false}) }, nil,
			func(v map[string]any) bool { return v["run_cmd"] == false && v["heater_enable"] == false }},
		{"coil past the table", func(p *Plant) error { return p.writeCoils(2, []bool{true, true}) }, modbus.ErrIllegalDataAddress, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlant(PlantOptions{Seed: 9})
			before := snapshotImage(p)
			err := tt.write(p)
			if err != tt.wantErr { // simonvetter maps errors by equality
				t.Fatalf("write error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !reflect.DeepEqual(snapshotImage(p), before) {
				t.Error("a refused write changed the register image")
			}
			if tt.check != nil && !tt.check(p.Values()) {
				t.Errorf("values after write: %v", p.Values())
			}
		})
	}
}

func strRegs(s string, n int) []uint16 {
	b := make([]byte, 2*n)
	copy(b, s)
	regs := make([]uint16, n)
	for i := range regs {
		regs[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return regs
}

// TestRegisterMap checks the map is well formed: unique valid names, no
// overlaps except bits of one register, sizes and orders the Modbus source
// accepts, and Values covering every tag.
func TestRegisterMap(t *testing.T) {
	specs := PlantTags()
	vals := NewPlant(PlantOptions{}).Values()
	if len(vals) != len(specs) {
		t.Errorf("Values has %d entries for %d tags", len(vals), len(specs))
	}
	used := map[string]string{}
	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			if err := model.ValidatePath(s.Name); err != nil || strings.ContainsAny(s.Name, "/ ") {
				t.Errorf("name: %v", err)
			}
			if _, ok := vals[s.Name]; !ok {
				t.Error("missing from Values")
			}
			if s.IsBitTable() != (s.Type == TypeBool && s.Bit == nil) {
				t.Error("bool needs a bit table or a bit, and only bools live in bit tables")
			}
			if s.Writable && s.Table != TableCoil && s.Table != TableHolding {
				t.Error("writable outside coils and holding registers")
			}
			if (s.Type == TypeString) != (s.Length > 0) || s.Width() < 1 || s.Width() > 125 {
				t.Errorf("width %d", s.Width())
			}
			if s.Width() > 1 && s.Type != TypeString && s.Order == "" {
				t.Error("multi-register value without an explicit order")
			}
			for a := s.Address; a < s.Address+s.Width(); a++ {
				key := fmt.Sprintf("%s %d", s.Table, a)
				if s.Bit != nil {
					key += fmt.Sprintf(" bit %d", *s.Bit)
				}
				if prev, dup := used[key]; dup {
					t.Errorf("overlaps %s at %s %d", prev, s.Table, a)
				}
				used[key] = s.Name
			}
		})
	}
	t.Run("Tags is a copy", func(t *testing.T) {
		p := NewPlant(PlantOptions{})
		tags := p.Tags()
		for i := range tags {
			if tags[i].Bit != nil {
				*tags[i].Bit = 15
			}
			if tags[i].Scale != nil {
				*tags[i].Scale = 1000
			}
			tags[i].Name = "x"
		}
		if !reflect.DeepEqual(p.Tags(), PlantTags()) {
			t.Error("modifying Tags' result changed the plant's map")
		}
	})
}

// TestREADMEListsEveryTag keeps the documented map in step with the code.
func TestREADMEListsEveryTag(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range PlantTags() {
		if !strings.Contains(readme, "| `"+s.Name+"` |") {
			t.Errorf("README.md register map lacks a row for %s", s.Name)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	types := []string{TypeInt16, TypeUint16, TypeInt32, TypeUint32, TypeInt64, TypeUint64, TypeFloat32, TypeFloat64}
	orders := []string{"", OrderABCD, OrderCDAB, OrderBADC, OrderDCBA}
	for _, typ := range types {
		for _, ord := range orders {
			t.Run(typ+"/"+ord, func(t *testing.T) {
				spec := TagSpec{Name: "x", Table: TableHolding, Type: typ, Order: ord}
				regs := make([]uint16, spec.Width())
				encodeRegs(&spec, numV(-1234), regs)
				if got := decodeTag(spec, regs); !matches(spec, got, -1234.0) && !strings.HasPrefix(typ, "uint") {
					t.Errorf("test decoder read %v for -1234", got)
				}
				encodeRegs(&spec, numV(1234), regs)
				if got := decodeRegs(&spec, regs, vNum); got.f != 1234 {
					t.Errorf("decodeRegs = %v, want 1234", got.f)
				}
				if got := decodeTag(spec, regs); !matches(spec, got, 1234.0) {
					t.Errorf("test decoder = %v, want 1234", got)
				}
			})
		}
	}
	t.Run("saturation", func(t *testing.T) {
		for _, c := range []struct {
			typ  string
			in   float64
			want uint16
		}{{TypeInt16, 1e9, 0x7fff}, {TypeInt16, -1e9, 0x8000}, {TypeUint16, -5, 0}, {TypeUint16, 1e9, 0xffff}} {
			spec := TagSpec{Type: c.typ, Table: TableHolding}
			regs := []uint16{0x1234}
			encodeRegs(&spec, numV(c.in), regs)
			if regs[0] != c.want {
				t.Errorf("%s(%g) = %#x, want %#x", c.typ, c.in, regs[0], c.want)
			}
		}
	})
}

// FuzzWriteHolding feeds arbitrary holding writes to the plant: it must
// never panic, must answer only with the two documented exceptions, and a
// refused write must leave the image untouched.
func FuzzWriteHolding(f *testing.F) {
	f.Add(uint16(0), []byte{0, 250})
	f.Add(uint16(1), []byte{0x42, 0x8c, 0, 0, 0, 0, 0xfa, 0x43})
	f.Add(uint16(10), []byte("LOT-1234........"))
	f.Add(uint16(3), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, addr uint16, data []byte) {
		if len(data) < 2 || len(data) > 246 {
			return
		}
		args := make([]uint16, len(data)/2)
		for i := range args {
			args[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		}
		p := NewPlant(PlantOptions{Seed: 1})
		before := snapshotImage(p)
		_, err := p.HandleHoldingRegisters(&modbus.HoldingRegistersRequest{Addr: addr, Quantity: uint16(len(args)), IsWrite: true, Args: args})
		switch {
		case err == nil:
			if p.State() == StateFault {
				t.Fatal("a setpoint write tripped the line")
			}
		case errors.Is(err, modbus.ErrIllegalDataAddress), errors.Is(err, modbus.ErrIllegalDataValue):
			if !reflect.DeepEqual(snapshotImage(p), before) {
				t.Fatal("refused write changed the image")
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
		_ = maps.Clone(p.Values())
	})
}
