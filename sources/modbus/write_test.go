package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sim"
)

func fp(f float64) *float64 { return &f }

func TestEncodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		tag  TagConfig
		in   model.Value
		want model.Value // decoded back; in when invalid
	}{
		{"int16 negative", TagConfig{Type: "int16"}, model.Int(-1234), model.Value{}},
		{"int16 BADC", TagConfig{Type: "int16", Order: "BADC"}, model.Int(0x1234), model.Value{}},
		{"uint16 from float", TagConfig{Type: "uint16"}, model.Float(600), model.Uint(600)},
		{"uint16 from int", TagConfig{Type: "uint16"}, model.Int(65535), model.Uint(65535)},
		{"int32 CDAB", TagConfig{Type: "int32", Order: "CDAB"}, model.Int(-70000), model.Value{}},
		{"uint32 DCBA", TagConfig{Type: "uint32", Order: "DCBA"}, model.Uint(0xDEADBEEF), model.Value{}},
		{"int64 min", TagConfig{Type: "int64", Order: "BADC"}, model.Int(math.MinInt64), model.Value{}},
		{"uint64 max", TagConfig{Type: "uint64", Order: "CDAB"}, model.Uint(math.MaxUint64), model.Value{}},
		{"float32 ABCD", TagConfig{Type: "float32"}, model.Float(72.5), model.Value{}},
		{"float32 from int", TagConfig{Type: "float32", Order: "DCBA"}, model.Int(750), model.Float(750)},
		{"float64 CDAB", TagConfig{Type: "float64", Order: "CDAB"}, model.Float(-1.0 / 3), model.Value{}},
		{"scaled int16", TagConfig{Type: "int16", Scale: fp(0.1)}, model.Float(-12.34), model.Float(-12.3)},
		{"scaled uint16 offset", TagConfig{Type: "uint16", Scale: fp(0.5), Offset: fp(-40)}, model.Float(10), model.Float(10)},
		{"string", TagConfig{Type: "string", Length: 4}, model.String("LOT-42"), model.Value{}},
		{"string BADC full", TagConfig{Type: "string", Length: 2, Order: "BADC"}, model.String("abcd"), model.Value{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.tag.Name, tt.tag.Table = "x", "holding"
			d := compileTag("", &tt.tag)
			regs, err := d.encodeRegs(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := d.decodeRegs(regs)
			want := tt.want
			if !want.IsValid() {
				want = tt.in
			}
			if !ok || !got.Equal(want) {
				t.Fatalf("decoded %#v from %04x, want %#v", got, regs, want)
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		tag  TagConfig
		in   model.Value
		want string
	}{
		{"uint16 overflow", TagConfig{Type: "uint16"}, model.Int(70000), "out of range for uint16"},
		{"uint16 negative", TagConfig{Type: "uint16"}, model.Int(-1), "out of range"},
		{"int16 from big uint", TagConfig{Type: "int16"}, model.Uint(40000), "out of range"},
		{"fraction", TagConfig{Type: "uint16"}, model.Float(300.5), "not an integer"},
		{"scaled overflow", TagConfig{Type: "int16", Scale: fp(0.01)}, model.Float(400), "out of range"},
		{"NaN", TagConfig{Type: "float32"}, model.Float(math.NaN()), "not a finite number"},
		{"float32 overflow", TagConfig{Type: "float32"}, model.Float(1e300), "out of range for float32"},
		{"bool to number", TagConfig{Type: "uint16"}, model.Bool(true), "needs a number"},
		{"string to number", TagConfig{Type: "float64"}, model.String("1"), "needs a number"},
		{"string too long", TagConfig{Type: "string", Length: 2}, model.String("abcde"), "does not fit"},
		{"number to string", TagConfig{Type: "string", Length: 2}, model.Int(1), "needs a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.tag.Name, tt.tag.Table = "x", "holding"
			d := compileTag("", &tt.tag)
			if _, err := d.encodeRegs(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// fcServer is a minimal Modbus TCP server with a coil and register image,
// for checking which function codes a write uses. It records the function
// code of every request.
type fcServer struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	coils  [64]bool
	regs   [64]uint16
	fcs    []byte
	conns  []net.Conn
	ignore bool // accept writes without applying them
}

func startFCServer(t *testing.T) *fcServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fcServer{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// seenFCs is how many requests arrived since the last takeFCs.
func (s *fcServer) seenFCs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fcs)
}

func (s *fcServer) takeFCs() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.fcs
	s.fcs = nil
	return out
}

func (s *fcServer) serve(c net.Conn) {
	defer c.Close()
	var hdr [7]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		pdu := make([]byte, int(binary.BigEndian.Uint16(hdr[4:]))-1)
		if _, err := io.ReadFull(c, pdu); err != nil || len(pdu) < 5 {
			return
		}
		fc, addr, qty := pdu[0], binary.BigEndian.Uint16(pdu[1:]), binary.BigEndian.Uint16(pdu[3:])
		s.mu.Lock()
		s.fcs = append(s.fcs, fc)
		resp := []byte{fc}
		switch fc {
		case 1:
			packed := make([]byte, (qty+7)/8)
			for i := range qty {
				if s.coils[addr+i] {
					packed[i/8] |= 1 << (i % 8)
				}
			}
			resp = append(append(resp, byte(len(packed))), packed...)
		case 3:
			resp = append(resp, byte(2*qty))
			for i := range qty {
				resp = binary.BigEndian.AppendUint16(resp, s.regs[addr+i])
			}
		case 5, 6:
			if !s.ignore && fc == 5 {
				s.coils[addr] = qty == 0xFF00
			} else if !s.ignore {
				s.regs[addr] = qty
			}
			resp = pdu[:5]
		case 15, 16:
			data := pdu[6:]
			for i := range qty {
				if s.ignore {
					break
				}
				if fc == 15 {
					s.coils[addr+i] = data[i/8]>>(i%8)&1 == 1
				} else {
					s.regs[addr+i] = binary.BigEndian.Uint16(data[2*i:])
				}
			}
			resp = pdu[:5]
		}
		s.mu.Unlock()
		if _, err := c.Write(frame(binary.BigEndian.Uint16(hdr[0:]), hdr[6], resp)); err != nil {
			return
		}
	}
}

// runUntilUp starts src and waits until every device is running.
func runUntilUp(t *testing.T, src *Source) {
	t.Helper()
	startSource(t, src, newRecorder())
	eventually(t, 5*time.Second, "devices running", func() bool {
		for _, c := range src.Status().Children {
			if c.State != pipeline.StateRunning {
				return false
			}
		}
		return true
	})
}

func TestWriteFunctionCodes(t *testing.T) {
	tests := []struct {
		name     string
		tag      TagConfig
		multiple bool
		setup    func(s *fcServer)
		value    model.Value
		wantFCs  []byte
		check    func(s *fcServer) bool
		wantOld  model.Value
	}{
		{name: "coil FC 5", tag: TagConfig{Table: "coil", Address: 3, Type: "bool"}, value: model.Bool(true),
			wantFCs: []byte{1, 5, 1}, check: func(s *fcServer) bool { return s.coils[3] }, wantOld: model.Bool(false)},
		{name: "coil FC 15", tag: TagConfig{Table: "coil", Address: 4, Type: "bool"}, multiple: true,
			setup: func(s *fcServer) { s.coils[4] = true }, value: model.Bool(false),
			wantFCs: []byte{1, 15, 1}, check: func(s *fcServer) bool { return !s.coils[4] }, wantOld: model.Bool(true)},
		{name: "uint16 FC 6", tag: TagConfig{Table: "holding", Address: 0, Type: "uint16"}, value: model.Int(300),
			setup:   func(s *fcServer) { s.regs[0] = 120 },
			wantFCs: []byte{3, 6, 3}, check: func(s *fcServer) bool { return s.regs[0] == 300 }, wantOld: model.Uint(120)},
		{name: "uint16 FC 16", tag: TagConfig{Table: "holding", Address: 1, Type: "uint16"}, multiple: true, value: model.Int(301),
			wantFCs: []byte{3, 16, 3}, check: func(s *fcServer) bool { return s.regs[1] == 301 }, wantOld: model.Uint(0)},
		{name: "float32 CDAB FC 16", tag: TagConfig{Table: "holding", Address: 10, Type: "float32", Order: "CDAB"}, value: model.Float(72.5),
			wantFCs: []byte{3, 16, 3}, check: func(s *fcServer) bool {
				b := math.Float32bits(72.5)
				return s.regs[10] == uint16(b) && s.regs[11] == uint16(b>>16)
			}, wantOld: model.Float(0)},
		{name: "register bit FC 6 read-modify-write", tag: TagConfig{Table: "holding", Address: 20, Type: "bool", Bit: intp(4)},
			setup: func(s *fcServer) { s.regs[20] = 0x0101 }, value: model.Bool(true),
			wantFCs: []byte{3, 6, 3}, check: func(s *fcServer) bool { return s.regs[20] == 0x0111 }, wantOld: model.Bool(false)},
		{name: "scaled int16", tag: TagConfig{Table: "holding", Address: 30, Type: "int16", Scale: fp(0.1)}, value: model.Float(-12.34),
			wantFCs: []byte{3, 6, 3}, check: func(s *fcServer) bool { return s.regs[30] == 0xFF85 }, wantOld: model.Float(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFCServer(t)
			if tt.setup != nil {
				tt.setup(srv)
			}
			tt.tag.Name = "t"
			src := mustNew(t, oneDevice("d", srv.ln.Addr().String(), time.Hour, func(d *DeviceConfig) {
				d.Groups[0].Tags = []TagConfig{tt.tag}
				d.WriteMultiple = tt.multiple
			}))
			runUntilUp(t, src)
			// The device is up once connected; its first poll may still be
			// on the way: wait until the server saw it, then forget it.
			eventually(t, hangBound, "the first poll", func() bool { return srv.seenFCs() > 0 })
			srv.takeFCs()
			old, err := src.WriteTag(context.Background(), "test/d/t", tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if !old.Equal(tt.wantOld) {
				t.Errorf("old = %#v, want %#v", old, tt.wantOld)
			}
			if fcs := srv.takeFCs(); !slices.Equal(fcs, tt.wantFCs) {
				t.Errorf("function codes %v, want %v", fcs, tt.wantFCs)
			}
			srv.mu.Lock()
			ok := tt.check(srv)
			srv.mu.Unlock()
			if !ok {
				t.Error("the device does not hold the written value")
			}
		})
	}
}

// plantDevice serves the simulated plant, counting write requests and,
// with ignore, acknowledging writes without applying them.
type plantDevice struct {
	*sim.Plant
	writes atomic.Int64
	ignore bool
}

func (p *plantDevice) HandleCoils(req *mb.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		p.writes.Add(1)
		if p.ignore {
			return nil, nil
		}
	}
	return p.Plant.HandleCoils(req)
}

func (p *plantDevice) HandleHoldingRegisters(req *mb.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		p.writes.Add(1)
		if p.ignore {
			return nil, nil
		}
	}
	return p.Plant.HandleHoldingRegisters(req)
}

// plantSource serves a stopped plant and runs a source with two devices
// on it: "plc" (FC 5/6/16) and "multi" (write_multiple: FC 15/16).
func plantSource(t *testing.T, ignore bool) (*plantDevice, *sim.Server, *Source) {
	t.Helper()
	dev := &plantDevice{Plant: sim.NewPlant(sim.PlantOptions{Seed: 3, StartStopped: true}), ignore: ignore}
	srv, err := sim.Serve(context.Background(), "127.0.0.1:0", sim.ServeOptions{Units: []sim.Unit{{Device: dev}}}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tags := []TagConfig{
		{Name: "run_cmd", Table: "coil", Address: 0, Type: "bool"},
		{Name: "heater_enable", Table: "coil", Address: 1, Type: "bool"},
		{Name: "speed_setpoint", Table: "holding", Address: 0, Type: "uint16"},
		{Name: "temp_setpoint", Table: "holding", Address: 1, Type: "float32"},
		{Name: "fill_volume", Table: "holding", Address: 3, Type: "float32", Order: "DCBA"},
		{Name: "batch_id", Table: "holding", Address: 10, Type: "string", Length: 8},
		{Name: "product_temp", Table: "input", Address: 0, Type: "float32"},
		{Name: "fault_active", Table: "discrete_input", Address: 0, Type: "bool"},
	}
	dc := func(name string, multiple bool) DeviceConfig {
		return DeviceConfig{Name: name, Address: srv.Addr(), Namespace: "plant/" + name, Timeout: time.Second, WriteMultiple: multiple,
			Groups: []GroupConfig{{Interval: time.Hour, Tags: slices.Clone(tags)}}}
	}
	src := mustNew(t, Config{Devices: []DeviceConfig{dc("plc", false), dc("multi", true)}})
	return dev, srv, src
}

func TestWriteTagSimulator(t *testing.T) {
	dev, _, src := plantSource(t, false)
	runUntilUp(t, src)
	tests := []struct {
		path  string
		tag   string
		value model.Value
		want  any
	}{
		{"plant/plc/run_cmd", "run_cmd", model.Bool(true), true},
		{"plant/multi/heater_enable", "heater_enable", model.Bool(false), false},
		{"plant/plc/heater_enable", "heater_enable", model.Bool(true), true},
		{"plant/plc/speed_setpoint", "speed_setpoint", model.Int(420), 420.0},
		{"plant/multi/speed_setpoint", "speed_setpoint", model.Float(450), 450.0},
		{"plant/plc/temp_setpoint", "temp_setpoint", model.Float(72.5), 72.5},
		{"plant/multi/fill_volume", "fill_volume", model.Float(750), 750.0},
		{"plant/plc/batch_id", "batch_id", model.String("LOT-0042"), "LOT-0042"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := dev.Values()[tt.tag]
			writes := dev.writes.Load()
			old, err := src.WriteTag(context.Background(), tt.path, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if got := dev.Values()[tt.tag]; got != tt.want {
				t.Fatalf("plant holds %v (%T), want %v", got, got, tt.want)
			}
			if n := dev.writes.Load() - writes; n != 1 {
				t.Fatalf("%d write requests, want 1", n)
			}
			if f, ok := old.Float64(); ok && old.Kind() != model.KindBool {
				if b, _ := before.(float64); math.Abs(f-b) > 1e-3 {
					t.Fatalf("old = %v, plant held %v", old, before)
				}
			}
		})
	}
}

func TestWriteTagRefusals(t *testing.T) {
	dev, srv, src := plantSource(t, false)
	tests := []struct {
		name    string
		path    string
		value   model.Value
		running bool
		want    string
		is      error
	}{
		{name: "not connected", path: "plant/plc/speed_setpoint", value: model.Int(300), want: "nothing was sent", is: ErrNotConnected},
		{name: "unknown tag", path: "plant/plc/nope", value: model.Int(1), running: true, want: "unknown tag"},
		{name: "input register", path: "plant/plc/product_temp", value: model.Float(1), running: true, want: "read-only (input table)"},
		{name: "discrete input", path: "plant/plc/fault_active", value: model.Bool(true), running: true, want: "read-only (discrete_input table)"},
		{name: "out of range for the type", path: "plant/plc/speed_setpoint", value: model.Int(70000), running: true, want: "out of range for uint16"},
		{name: "bool to a coil as number", path: "plant/plc/run_cmd", value: model.Int(1), running: true, want: "needs a bool"},
		{name: "string too long", path: "plant/plc/batch_id", value: model.String(strings.Repeat("x", 17)), running: true, want: "does not fit"},
		{name: "plant limit (exception)", path: "plant/plc/speed_setpoint", value: model.Int(700), running: true, want: "illegal data value"},
	}
	for _, tt := range tests {
		if tt.running && src.Status().State != pipeline.StateRunning {
			runUntilUp(t, src) // for the rest of the test
		}
		t.Run(tt.name, func(t *testing.T) {
			reqs := srv.Stats().Requests
			writes := dev.writes.Load()
			_, err := src.WriteTag(context.Background(), tt.path, tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.name == "plant limit (exception)" {
				return // reached the device, which refused it
			}
			if d := srv.Stats().Requests - reqs; d != 0 || dev.writes.Load() != writes {
				t.Fatalf("%d requests reached the device", d)
			}
		})
	}
}

func TestWriteTagReadBackMismatch(t *testing.T) {
	dev, _, src := plantSource(t, true)
	runUntilUp(t, src)
	before := dev.Values()["speed_setpoint"]
	_, err := src.WriteTag(context.Background(), "plant/plc/speed_setpoint", model.Int(333))
	if err == nil || !strings.Contains(err.Error(), "read-back mismatch: wrote 333, device holds") {
		t.Fatalf("err = %v", err)
	}
	if dev.writes.Load() != 1 || dev.Values()["speed_setpoint"] != before {
		t.Fatalf("writes %d, value %v", dev.writes.Load(), dev.Values()["speed_setpoint"])
	}
	_, err = src.WriteTag(context.Background(), "plant/multi/run_cmd", model.Bool(true))
	if err == nil || !strings.Contains(err.Error(), "read-back mismatch: wrote true, device holds false") {
		t.Fatalf("coil: err = %v", err)
	}
}

func BenchmarkEncodeFloat32(b *testing.B) {
	d := compileTag("", &TagConfig{Name: "x", Table: "holding", Type: "float32", Order: "CDAB"})
	v := model.Float(72.5)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.encodeRegs(v); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWritesInterleaveWithPolling writes from several goroutines while the
// device goroutine polls every few milliseconds on the same connection.
func TestWritesInterleaveWithPolling(t *testing.T) {
	srv := startFCServer(t)
	src := mustNew(t, oneDevice("d", srv.ln.Addr().String(), 2*time.Millisecond, func(d *DeviceConfig) {
		d.Groups[0].Tags = []TagConfig{
			{Name: "a", Table: "holding", Address: 0, Type: "uint16"},
			{Name: "b", Table: "holding", Address: 1, Type: "float32"},
			{Name: "c", Table: "coil", Address: 0, Type: "bool"},
		}
	}))
	runUntilUp(t, src)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range 20 {
				var err error
				switch g {
				case 0:
					_, err = src.WriteTag(context.Background(), "test/d/a", model.Int(int64(i)))
				case 1:
					_, err = src.WriteTag(context.Background(), "test/d/b", model.Float(float64(i)/2))
				default:
					_, err = src.WriteTag(context.Background(), "test/d/c", model.Bool(i%2 == 0))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.regs[0] != 19 || srv.coils[0] {
		t.Fatalf("final image regs[0]=%d coil=%v", srv.regs[0], srv.coils[0])
	}
	polls := 0
	for _, fc := range srv.fcs {
		if fc == 1 || fc == 3 {
			polls++
		}
	}
	if polls <= 120 { // 3 × 20 writes read twice each; the rest are polls
		t.Logf("only %d reads: polls may not have interleaved", polls)
	}
}
