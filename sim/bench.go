package sim

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/simonvetter/modbus"
)

// MaxBenchTags bounds a bench device: the holding table's address space.
const MaxBenchTags = 65536

// BenchDevice is a generic load-test device: nTags uint16 holding registers
// at addresses 0..nTags-1, read-only, whose values change on every read
// request and every Step, so every poll yields new values for the pipeline
// to carry.
//
// Register i holds base[i] + g·inc[i] (mod 2^16), where base and inc (odd,
// so the value never repeats within 2^16 generations) follow from the seed
// and g is the generation: the number of read requests plus Steps so far.
// Reads are lock-free (one atomic add and arithmetic), so a harness of
// 50 devices × 200 registers at 10 Hz measures the gateway, not the
// simulator.
type BenchDevice struct {
	specs     []TagSpec
	base, inc []uint16 // immutable
	gen       atomic.Uint64
}

// NewBenchDevice builds a bench device with nTags registers (1..65536).
func NewBenchDevice(seed int64, nTags int) (*BenchDevice, error) {
	if nTags < 1 || nTags > MaxBenchTags {
		return nil, fmt.Errorf("sim: bench device: %d tags is out of range 1..%d", nTags, MaxBenchTags)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0xbe0c))
	d := &BenchDevice{
		specs: make([]TagSpec, nTags),
		base:  make([]uint16, nTags),
		inc:   make([]uint16, nTags),
	}
	for i := range nTags {
		d.base[i] = uint16(rng.Uint32())
		d.inc[i] = uint16(rng.Uint32()) | 1
		d.specs[i] = TagSpec{
			Name: fmt.Sprintf("r%05d", i), Table: TableHolding, Address: i, Type: TypeUint16,
			Description: "bench register",
		}
	}
	return d, nil
}

// Tags returns the device's register map; the slice is the caller's.
func (d *BenchDevice) Tags() []TagSpec { return cloneSpecs(d.specs) }

// Step advances the generation by one; dt is ignored (bench values do not
// model time).
func (d *BenchDevice) Step(time.Duration) { d.gen.Add(1) }

// Generation is the number of read requests plus Steps so far.
func (d *BenchDevice) Generation() uint64 { return d.gen.Load() }

// ValueAt is register i's value at generation g, for harnesses that check
// what they received.
func (d *BenchDevice) ValueAt(i int, g uint64) uint16 { return d.base[i] + uint16(g)*d.inc[i] }

// HandleHoldingRegisters serves FC 03; writes (FC 06/16) are refused with
// Illegal Data Address since every register is read-only.
func (d *BenchDevice) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite || !inRange(req.Addr, req.Quantity, len(d.base)) {
		return nil, modbus.ErrIllegalDataAddress
	}
	g := uint16(d.gen.Add(1))
	out := make([]uint16, req.Quantity)
	base, inc := d.base[req.Addr:], d.inc[req.Addr:]
	for i := range out {
		out[i] = base[i] + g*inc[i]
	}
	return out, nil
}

// HandleCoils refuses: a bench device has no coils.
func (d *BenchDevice) HandleCoils(*modbus.CoilsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalDataAddress
}

// HandleDiscreteInputs refuses: a bench device has no discrete inputs.
func (d *BenchDevice) HandleDiscreteInputs(*modbus.DiscreteInputsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalDataAddress
}

// HandleInputRegisters refuses: a bench device has no input registers.
func (d *BenchDevice) HandleInputRegisters(*modbus.InputRegistersRequest) ([]uint16, error) {
	return nil, modbus.ErrIllegalDataAddress
}

var (
	_ Device = (*BenchDevice)(nil)
	_ Device = (*Plant)(nil)
)
