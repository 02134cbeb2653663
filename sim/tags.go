package sim

import (
	"math"
)

// Modbus tables, as spelled in a Modbus source tag's `table` key.
const (
	TableCoil     = "coil"
	TableDiscrete = "discrete_input"
	TableHolding  = "holding"
	TableInput    = "input"
)

// Value types, as spelled in a Modbus source tag's `type` key.
const (
	TypeBool    = "bool"
	TypeInt16   = "int16"
	TypeUint16  = "uint16"
	TypeInt32   = "int32"
	TypeUint32  = "uint32"
	TypeInt64   = "int64"
	TypeUint64  = "uint64"
	TypeFloat32 = "float32"
	TypeFloat64 = "float64"
	TypeString  = "string"
)

// Register orders of multi-register values. The letters name the value's
// bytes from most to least significant as they arrive on the wire; for 64-bit
// values the pattern extends: ABCD = ABCDEFGH (big-endian), CDAB = GHEFCDAB
// (registers reversed), BADC = BADCFEHG (bytes swapped in each register),
// DCBA = HGFEDCBA (little-endian). The empty order means ABCD.
const (
	OrderABCD = "ABCD"
	OrderCDAB = "CDAB"
	OrderBADC = "BADC"
	OrderDCBA = "DCBA"
)

// TagSpec says where one simulated value lives and how it is encoded. Its
// fields and yaml keys are those of a Modbus source tag, so the CLI can turn
// a device's Tags() into a source configuration field by field (or by
// marshalling it); Writable is the simulator's own and is not marshalled.
//
// Bit, Scale and Offset are pointers for the same reason as in the source:
// their absence is distinct from zero (a set Scale or Offset makes the
// decoded value a float: eng = raw × scale + offset).
type TagSpec struct {
	Name        string   `yaml:"name"`
	Table       string   `yaml:"table"`
	Address     int      `yaml:"address"`
	Type        string   `yaml:"type"`
	Order       string   `yaml:"order,omitempty"`
	Bit         *int     `yaml:"bit,omitempty"`
	Length      int      `yaml:"length,omitempty"`
	Scale       *float64 `yaml:"scale,omitempty"`
	Offset      *float64 `yaml:"offset,omitempty"`
	Unit        string   `yaml:"unit,omitempty"`
	Description string   `yaml:"description,omitempty"`
	// Writable reports whether the simulator accepts writes to the tag
	// (coil or holding register). Writes elsewhere are refused with
	// Illegal Data Address.
	Writable bool `yaml:"-"`
}

// Width is the number of registers (or bits, on a bit table) the tag
// occupies.
func (t TagSpec) Width() int {
	switch t.Type {
	case TypeInt32, TypeUint32, TypeFloat32:
		return 2
	case TypeInt64, TypeUint64, TypeFloat64:
		return 4
	case TypeString:
		return t.Length
	}
	return 1
}

// IsBitTable reports whether the tag lives in a single-bit table.
func (t TagSpec) IsBitTable() bool { return t.Table == TableCoil || t.Table == TableDiscrete }

func (t TagSpec) scale() float64 {
	if t.Scale == nil {
		return 1
	}
	return *t.Scale
}

func (t TagSpec) offset() float64 {
	if t.Offset == nil {
		return 0
	}
	return *t.Offset
}

func (t TagSpec) wordSwap() bool { return t.Order == OrderCDAB || t.Order == OrderDCBA }
func (t TagSpec) byteSwap() bool { return t.Order == OrderBADC || t.Order == OrderDCBA }

func ptr[T any](v T) *T { return &v }

// valKind is the kind of a model quantity behind a tag.
type valKind uint8

const (
	vBool valKind = iota
	vNum          // float64: measurements, setpoints, scaled integers
	vUint         // uint64: counters and totals, encoded without scaling
	vStr
)

// val is a model quantity in engineering units, before encoding. A small
// struct rather than `any` so the encoder does not allocate.
type val struct {
	kind valKind
	b    bool
	f    float64
	u    uint64
	s    string
}

// any returns the value as the Go type Values documents.
func (v val) any() any {
	switch v.kind {
	case vBool:
		return v.b
	case vUint:
		return v.u
	case vStr:
		return v.s
	}
	return v.f
}

// putRaw writes the n-register integer raw into regs in the tag's order.
func putRaw(regs []uint16, raw uint64, n int, wordSwap, byteSwap bool) {
	for i := 0; i < n; i++ {
		w := uint16(raw >> (16 * (n - 1 - i)))
		if byteSwap {
			w = w<<8 | w>>8
		}
		if wordSwap {
			regs[n-1-i] = w
		} else {
			regs[i] = w
		}
	}
}

// getRaw is putRaw's inverse.
func getRaw(regs []uint16, n int, wordSwap, byteSwap bool) uint64 {
	var raw uint64
	for i := 0; i < n; i++ {
		w := regs[i]
		if wordSwap {
			w = regs[n-1-i]
		}
		if byteSwap {
			w = w<<8 | w>>8
		}
		raw = raw<<16 | uint64(w)
	}
	return raw
}

// intRange is the raw range of an integer type.
func intRange(typ string) (lo, hi float64) {
	switch typ {
	case TypeInt16:
		return math.MinInt16, math.MaxInt16
	case TypeUint16:
		return 0, math.MaxUint16
	case TypeInt32:
		return math.MinInt32, math.MaxInt32
	case TypeUint32:
		return 0, math.MaxUint32
	case TypeInt64:
		return math.MinInt64, math.MaxInt64
	}
	return 0, math.MaxUint64
}

// encodeRegs encodes v into regs (len ≥ t.Width()) per the tag's type,
// order, scale and offset. Out-of-range numbers saturate, as a PLC's
// conversion blocks do; counters (vUint, unscaled) wrap at the type's width.
func encodeRegs(t *TagSpec, v val, regs []uint16) {
	n := t.Width()
	ws, bs := t.wordSwap(), t.byteSwap()
	switch t.Type {
	case TypeBool:
		mask := uint16(1) << uint(*t.Bit)
		if v.b {
			regs[0] |= mask
		} else {
			regs[0] &^= mask
		}
	case TypeString:
		for i := 0; i < n; i++ {
			var hi, lo byte
			if 2*i < len(v.s) {
				hi = v.s[2*i]
			}
			if 2*i+1 < len(v.s) {
				lo = v.s[2*i+1]
			}
			if bs {
				hi, lo = lo, hi
			}
			regs[i] = uint16(hi)<<8 | uint16(lo)
		}
	case TypeFloat32:
		f := (v.f - t.offset()) / t.scale()
		putRaw(regs, uint64(math.Float32bits(float32(f))), n, ws, bs)
	case TypeFloat64:
		f := (v.f - t.offset()) / t.scale()
		putRaw(regs, math.Float64bits(f), n, ws, bs)
	default: // integers
		if v.kind == vUint && t.Scale == nil && t.Offset == nil {
			putRaw(regs, v.u, n, ws, bs)
			return
		}
		f := math.Round((v.f - t.offset()) / t.scale())
		lo, hi := intRange(t.Type)
		var raw uint64
		switch {
		case math.IsNaN(f):
			raw = 0
		case t.Type == TypeInt16 || t.Type == TypeInt32 || t.Type == TypeInt64:
			raw = uint64(int64(math.Max(lo, math.Min(hi, f))))
			// float64(MaxInt64) rounds up to 2^63; keep it in range.
			if f >= hi {
				raw = math.MaxInt64 >> (64 - 16*n)
			}
		default:
			if f >= hi {
				raw = math.MaxUint64
			} else {
				raw = uint64(math.Max(lo, f))
			}
		}
		putRaw(regs, raw, n, ws, bs)
	}
}

// decodeRegs turns the registers of a written tag back into a model
// quantity of kind want. It is the simulator's decoder of outside input.
func decodeRegs(t *TagSpec, regs []uint16, want valKind) val {
	n := t.Width()
	ws, bs := t.wordSwap(), t.byteSwap()
	switch t.Type {
	case TypeBool:
		return val{kind: vBool, b: regs[0]>>uint(*t.Bit)&1 == 1}
	case TypeString:
		b := make([]byte, 0, 2*n)
		for i := 0; i < n; i++ {
			hi, lo := byte(regs[i]>>8), byte(regs[i])
			if bs {
				hi, lo = lo, hi
			}
			b = append(b, hi, lo)
		}
		return val{kind: vStr, s: string(b)}
	}
	raw := getRaw(regs, n, ws, bs)
	var f float64
	switch t.Type {
	case TypeFloat32:
		f = float64(math.Float32frombits(uint32(raw)))
	case TypeFloat64:
		f = math.Float64frombits(raw)
	case TypeInt16:
		f = float64(int16(raw))
	case TypeInt32:
		f = float64(int32(raw))
	case TypeInt64:
		f = float64(int64(raw))
	default:
		if want == vUint && t.Scale == nil && t.Offset == nil {
			return val{kind: vUint, u: raw}
		}
		f = float64(raw)
	}
	return val{kind: vNum, f: f*t.scale() + t.offset()}
}
