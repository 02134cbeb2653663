package sim

import (
	"fmt"

	"github.com/simonvetter/modbus"
)

// image is the register image clients read: the model encoded per the
// register map. It is rebuilt under the write lock after every Step and
// write, so a read is a bounds check and a copy.
type image struct {
	coils, discretes []bool
	holding, input   []uint16
}

// extent is one past the highest address any tag of the table uses.
func extent(specs []TagSpec, table string) int {
	n := 0
	for _, s := range specs {
		if s.Table == table {
			n = max(n, s.Address+s.Width())
		}
	}
	return n
}

func newImage(specs []TagSpec) image {
	return image{
		coils:     make([]bool, extent(specs, TableCoil)),
		discretes: make([]bool, extent(specs, TableDiscrete)),
		holding:   make([]uint16, extent(specs, TableHolding)),
		input:     make([]uint16, extent(specs, TableInput)),
	}
}

// index maps each writable address to the tag that owns it (-1: none).
// Only the writable tables need it; reads serve the image regardless of
// which tag, if any, owns an address, so gaps read as 0 like a PLC's unused
// data block words.
type index struct {
	coils, holding []int32
}

// newIndex builds the index and panics on overlapping writable tags: the
// register map is code, so that is a programming error caught by any test.
func newIndex(specs []TagSpec) index {
	ix := index{
		coils:   filled(extent(specs, TableCoil)),
		holding: filled(extent(specs, TableHolding)),
	}
	for i, s := range specs {
		var owners []int32
		switch s.Table {
		case TableCoil:
			owners = ix.coils
		case TableHolding:
			owners = ix.holding
		default:
			continue
		}
		for a := s.Address; a < s.Address+s.Width(); a++ {
			if owners[a] >= 0 {
				panic(fmt.Sprintf("sim: tag %q overlaps tag %q at %s %d", s.Name, specs[owners[a]].Name, s.Table, a))
			}
			owners[a] = int32(i)
		}
	}
	return ix
}

func filled(n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = -1
	}
	return s
}

// refreshLocked re-encodes every tag into the image. Called with mu held.
func (p *Plant) refreshLocked() {
	for i := range p.specs {
		spec, v := &p.specs[i], p.binds[i].get(&p.st)
		switch spec.Table {
		case TableCoil:
			p.img.coils[spec.Address] = v.b
		case TableDiscrete:
			p.img.discretes[spec.Address] = v.b
		case TableHolding:
			encodeRegs(spec, v, p.img.holding[spec.Address:])
		case TableInput:
			encodeRegs(spec, v, p.img.input[spec.Address:])
		}
	}
}

// inRange reports whether [addr, addr+qty) lies within a table of n items.
func inRange(addr, qty uint16, n int) bool {
	return qty > 0 && int(addr)+int(qty) <= n
}

// Tags returns the plant's register map. The slice and its pointers are the
// caller's.
func (p *Plant) Tags() []TagSpec { return cloneSpecs(p.specs) }

// PlantTags is the filling line's register map without building a plant,
// for tools that only need the layout (the demo configuration).
func PlantTags() []TagSpec {
	specs, _ := plantMap()
	return specs
}

func cloneSpecs(specs []TagSpec) []TagSpec {
	out := make([]TagSpec, len(specs))
	for i, s := range specs {
		if s.Bit != nil {
			s.Bit = ptr(*s.Bit)
		}
		if s.Scale != nil {
			s.Scale = ptr(*s.Scale)
		}
		if s.Offset != nil {
			s.Offset = ptr(*s.Offset)
		}
		out[i] = s
	}
	return out
}

// Values returns every tag's current value in engineering units, keyed by
// tag name, before encoding: bool, float64 (measurements, setpoints and
// scaled integers), uint64 (unscaled counters and totals) or string. A
// client decoding the registers per Tags gets the same value up to the
// encoding's resolution. It allocates; it is for tests and diagnostics.
func (p *Plant) Values() map[string]any {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make(map[string]any, len(p.specs))
	for i := range p.specs {
		out[p.specs[i].Name] = p.binds[i].get(&p.st).any()
	}
	return out
}

// HandleCoils serves FC 01, 05 and 15.
func (p *Plant) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		return nil, p.writeCoils(req.Addr, req.Args)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return copyBits(p.img.coils, req.Addr, req.Quantity)
}

// HandleDiscreteInputs serves FC 02.
func (p *Plant) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return copyBits(p.img.discretes, req.Addr, req.Quantity)
}

// HandleHoldingRegisters serves FC 03, 06 and 16.
func (p *Plant) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, p.writeHolding(req.Addr, req.Args)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return copyRegs(p.img.holding, req.Addr, req.Quantity)
}

// HandleInputRegisters serves FC 04.
func (p *Plant) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return copyRegs(p.img.input, req.Addr, req.Quantity)
}

func copyBits(src []bool, addr, qty uint16) ([]bool, error) {
	if !inRange(addr, qty, len(src)) {
		return nil, modbus.ErrIllegalDataAddress
	}
	out := make([]bool, qty)
	copy(out, src[addr:])
	return out, nil
}

func copyRegs(src []uint16, addr, qty uint16) ([]uint16, error) {
	if !inRange(addr, qty, len(src)) {
		return nil, modbus.ErrIllegalDataAddress
	}
	out := make([]uint16, qty)
	copy(out, src[addr:])
	return out, nil
}

// writeCoils applies a coil write: every coil must belong to a writable tag,
// or the whole write is refused with Illegal Data Address.
func (p *Plant) writeCoils(addr uint16, args []bool) error {
	if !inRange(addr, uint16(len(args)), len(p.ix.coils)) || len(args) > 0xffff {
		return modbus.ErrIllegalDataAddress
	}
	for i := range args {
		if o := p.ix.coils[int(addr)+i]; o < 0 || !p.specs[o].Writable {
			return modbus.ErrIllegalDataAddress
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	next := p.st
	for i, b := range args {
		if err := p.binds[p.ix.coils[int(addr)+i]].set(&next, boolV(b)); err != nil {
			return err
		}
	}
	p.st = next
	p.refreshLocked()
	return nil
}

// writeHolding applies a register write. The write must cover whole
// writable tags: a register of a read-only tag, an unmapped register or
// half a float is Illegal Data Address; a value outside the tag's limits
// is Illegal Data Value. Either way nothing changes.
func (p *Plant) writeHolding(addr uint16, args []uint16) error {
	end := int(addr) + len(args)
	if !inRange(addr, uint16(len(args)), len(p.ix.holding)) || len(args) > 0xffff {
		return modbus.ErrIllegalDataAddress
	}
	for a := int(addr); a < end; a++ {
		o := p.ix.holding[a]
		if o < 0 || !p.specs[o].Writable {
			return modbus.ErrIllegalDataAddress
		}
		if s := &p.specs[o]; s.Address < int(addr) || s.Address+s.Width() > end {
			return modbus.ErrIllegalDataAddress
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	next := p.st
	for a := int(addr); a < end; {
		o := p.ix.holding[a]
		spec := &p.specs[o]
		v := decodeRegs(spec, args[spec.Address-int(addr):], p.binds[o].kind)
		if err := p.binds[o].set(&next, v); err != nil {
			return err
		}
		a = spec.Address + spec.Width()
	}
	p.st = next
	p.refreshLocked()
	return nil
}

var _ modbus.RequestHandler = (*Plant)(nil)
