package modbus

import (
	"fmt"
	"math"

	"github.com/weir-edge/weir/model"
)

// encodeRegs turns a value in engineering units into the tag's registers:
// the inverse of decodeRegs. Scaled tags are unscaled first
// (raw = (v − offset) / scale) and rounded to the nearest integer for
// integer types, so a write lands at the device's resolution. Unscaled
// integer types take integers only (a float with a fraction is refused),
// and every value must fit its type. Bools taken from a register bit are
// not handled here: they need the register's other bits (writeTag).
func (d *tagDef) encodeRegs(v model.Value) ([]uint16, error) {
	regs := make([]uint16, d.typ.width(int(d.width)))
	switch d.typ {
	case typeString:
		if v.Kind() != model.KindString {
			return nil, fmt.Errorf("%s needs a string, not %s", d.typ, v.Kind())
		}
		s := v.AsString()
		if len(s) > 2*len(regs) {
			return nil, fmt.Errorf("string of %d bytes does not fit %d registers (%d bytes)", len(s), len(regs), 2*len(regs))
		}
		var b [2]byte
		for i := range regs {
			b[0], b[1] = 0, 0 // NUL padding
			if 2*i < len(s) {
				b[0] = s[2*i]
			}
			if 2*i+1 < len(s) {
				b[1] = s[2*i+1]
			}
			if d.byteSwap {
				b[0], b[1] = b[1], b[0]
			}
			regs[i] = uint16(b[0])<<8 | uint16(b[1])
		}
		return regs, nil
	case typeBool:
		return nil, fmt.Errorf("bool on a register needs the register's other bits")
	}
	raw, err := d.rawOf(v)
	if err != nil {
		return nil, err
	}
	d.putRaw(regs, raw)
	return regs, nil
}

// rawOf computes the integer bit pattern of a numeric value for the
// tag's type (two's complement for signed types, IEEE 754 for floats).
func (d *tagDef) rawOf(v model.Value) (uint64, error) {
	k := v.Kind()
	if k != model.KindInt && k != model.KindUint && k != model.KindFloat {
		return 0, fmt.Errorf("%s needs a number, not %s", d.typ, k)
	}
	f, _ := v.Float64()
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a finite number", v)
	}
	switch d.typ {
	case typeFloat32:
		f = d.unscale(f)
		if math.Abs(f) > math.MaxFloat32 {
			return 0, fmt.Errorf("%s is out of range for float32", v)
		}
		return uint64(math.Float32bits(float32(f))), nil
	case typeFloat64:
		return math.Float64bits(d.unscale(f)), nil
	}
	signed := d.typ == typeInt16 || d.typ == typeInt32 || d.typ == typeInt64
	bits := 16 * d.typ.width(0)
	// Exact integer path: no float rounding for 64-bit values.
	if !d.scaled && k != model.KindFloat {
		if k == model.KindInt {
			i := v.AsInt()
			if signed && (bits == 64 || (i >= -(1<<(bits-1)) && i < 1<<(bits-1))) {
				return uint64(i) & mask(bits), nil
			}
			if !signed && i >= 0 && (bits == 64 || uint64(i) < 1<<bits) {
				return uint64(i), nil
			}
			return 0, fmt.Errorf("%s is out of range for %s", v, d.typ)
		}
		u := v.AsUint()
		if (signed && u < 1<<(bits-1)) || (!signed && (bits == 64 || u < 1<<bits)) {
			return u, nil
		}
		return 0, fmt.Errorf("%s is out of range for %s", v, d.typ)
	}
	if d.scaled {
		f = math.Round(d.unscale(f))
	} else if f != math.Trunc(f) {
		return 0, fmt.Errorf("%s is not an integer, as %s needs", v, d.typ)
	}
	lo, hi := 0.0, math.Ldexp(1, bits) // [lo, hi)
	if signed {
		lo, hi = -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)
	}
	if f < lo || f >= hi {
		return 0, fmt.Errorf("%s is out of range for %s (raw %g)", v, d.typ, f)
	}
	if signed {
		return uint64(int64(f)) & mask(bits), nil
	}
	return uint64(f), nil
}

func mask(bits int) uint64 {
	if bits == 64 {
		return math.MaxUint64
	}
	return 1<<bits - 1
}

// unscale inverts number(): raw = (v − offset) / scale.
func (d *tagDef) unscale(f float64) float64 {
	if !d.scaled {
		return f
	}
	return (f - d.offset) / d.scale
}

// putRaw spreads raw over the registers per the tag's order: the inverse
// of raw().
func (d *tagDef) putRaw(regs []uint16, raw uint64) {
	n := len(regs)
	for k := range n {
		w := uint16(raw >> (16 * (n - 1 - k)))
		if d.byteSwap {
			w = w<<8 | w>>8
		}
		if d.wordSwap {
			regs[n-1-k] = w
		} else {
			regs[k] = w
		}
	}
}
