package modbus

import (
	"math"

	"github.com/weir-edge/weir/internal/decimal"
	"github.com/weir-edge/weir/model"
)

// table is one of the four Modbus data tables.
type table uint8

const (
	tableCoil table = iota
	tableDiscrete
	tableHolding
	tableInput
	numTables
)

var tableNames = [numTables]string{"coil", "discrete_input", "holding", "input"}

func parseTable(s string) (table, bool) {
	for i, n := range tableNames {
		if s == n {
			return table(i), true
		}
	}
	return 0, false
}

func (t table) String() string {
	if t < numTables {
		return tableNames[t]
	}
	return "table?"
}

// isBits reports whether the table holds single bits (FC 01/02) rather than
// 16-bit registers (FC 03/04).
func (t table) isBits() bool { return t == tableCoil || t == tableDiscrete }

func (t table) unit() string {
	if t.isBits() {
		return "bits"
	}
	return "registers"
}

// dataType is how a tag's registers are interpreted.
type dataType uint8

const (
	typeBool dataType = iota
	typeInt16
	typeUint16
	typeInt32
	typeUint32
	typeInt64
	typeUint64
	typeFloat32
	typeFloat64
	typeString
	numTypes
)

var typeNames = [numTypes]string{"bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}

func parseType(s string) (dataType, bool) {
	for i, n := range typeNames {
		if s == n {
			return dataType(i), true
		}
	}
	return 0, false
}

func (t dataType) String() string {
	if t < numTypes {
		return typeNames[t]
	}
	return "type?"
}

// width is the number of registers (or bits, for bool on a bit table) the
// type occupies; length is a string's register count.
func (t dataType) width(length int) int {
	switch t {
	case typeInt32, typeUint32, typeFloat32:
		return 2
	case typeInt64, typeUint64, typeFloat64:
		return 4
	case typeString:
		return length
	}
	return 1
}

// kind is the model kind of the decoded, unscaled value.
func (t dataType) kind() model.Kind {
	switch t {
	case typeBool:
		return model.KindBool
	case typeInt16, typeInt32, typeInt64:
		return model.KindInt
	case typeUint16, typeUint32, typeUint64:
		return model.KindUint
	case typeFloat32, typeFloat64:
		return model.KindFloat
	case typeString:
		return model.KindString
	}
	return model.KindInvalid
}

// order is the arrangement of a value's bytes over its registers. The letters
// name the value's bytes from most to least significant (A first) in the
// order they arrive on the wire. For 64-bit values the pattern extends:
// ABCD = ABCDEFGH (big-endian), CDAB = GHEFCDAB (registers reversed, least
// significant first), BADC = BADCFEHG (bytes swapped in each register),
// DCBA = HGFEDCBA (little-endian). For 16-bit values BADC and DCBA swap the
// two bytes and CDAB is the same as ABCD.
type order uint8

const (
	orderABCD order = iota
	orderCDAB
	orderBADC
	orderDCBA
)

func parseOrder(s string) (order, bool) {
	switch s {
	case "", "ABCD":
		return orderABCD, true
	case "CDAB":
		return orderCDAB, true
	case "BADC":
		return orderBADC, true
	case "DCBA":
		return orderDCBA, true
	}
	return 0, false
}

func (o order) wordSwap() bool { return o == orderCDAB || o == orderDCBA }
func (o order) byteSwap() bool { return o == orderBADC || o == orderDCBA }

// tagDef is a compiled tag: everything the hot path needs, with the path
// prebuilt so decoding allocates nothing but strings.
type tagDef struct {
	path     string
	table    table
	typ      dataType
	addr     uint16
	width    uint16 // registers, or bits on a bit table
	wordSwap bool
	byteSwap bool
	bit      int8 // -1 unless a bool is taken from a register bit
	scaled   bool
	scale    float64
	offset   float64
	affine   decimal.Affine // scale and offset, decimal-faithful
	kind     model.Kind
	unit     string
	desc     string
}

// compileTag turns a validated TagConfig into a tagDef.
func compileTag(namespace string, t *TagConfig) tagDef {
	tbl, _ := parseTable(t.Table)
	typ, _ := parseType(t.Type)
	ord, _ := parseOrder(t.Order)
	d := tagDef{
		path:     tagPath(namespace, t.Name),
		table:    tbl,
		typ:      typ,
		addr:     uint16(t.Address),
		width:    uint16(typ.width(t.Length)),
		wordSwap: ord.wordSwap(),
		byteSwap: ord.byteSwap(),
		bit:      -1,
		scale:    1,
		kind:     typ.kind(),
		unit:     t.Unit,
		desc:     t.Description,
	}
	if t.Bit != nil {
		d.bit = int8(*t.Bit)
	}
	if t.Scale != nil || t.Offset != nil {
		d.scaled = true
		d.kind = model.KindFloat
		if t.Scale != nil {
			d.scale = *t.Scale
		}
		if t.Offset != nil {
			d.offset = *t.Offset
		}
		d.affine = decimal.NewAffine(d.scale, d.offset)
	}
	return d
}

// raw combines n registers (1, 2 or 4) into an integer per the tag's order.
func (d *tagDef) raw(regs []uint16, n int) uint64 {
	var v uint64
	for i := 0; i < n; i++ {
		r := regs[i]
		if d.wordSwap {
			r = regs[n-1-i]
		}
		if d.byteSwap {
			r = r<<8 | r>>8
		}
		v = v<<16 | uint64(r)
	}
	return v
}

// decodeRegs decodes the tag from regs, which start at the tag's address.
// It reports false when regs is too short (a response shorter than planned).
func (d *tagDef) decodeRegs(regs []uint16) (model.Value, bool) {
	// The type decides how many registers are read; width (from the
	// config) must agree, but the decoder does not rely on it.
	if need := d.typ.width(int(d.width)); need == 0 || need > len(regs) || int(d.width) < need {
		return model.Value{}, false
	}
	switch d.typ {
	case typeBool:
		if d.bit < 0 || d.bit > 15 {
			return model.Value{}, false
		}
		return model.Bool(regs[0]>>uint(d.bit)&1 == 1), true
	case typeString:
		return model.String(d.decodeString(regs[:d.width])), true
	case typeInt16:
		return d.number(model.Int(int64(int16(d.raw(regs, 1))))), true
	case typeUint16:
		return d.number(model.Uint(d.raw(regs, 1))), true
	case typeInt32:
		return d.number(model.Int(int64(int32(d.raw(regs, 2))))), true
	case typeUint32:
		return d.number(model.Uint(d.raw(regs, 2))), true
	case typeInt64:
		return d.number(model.Int(int64(d.raw(regs, 4)))), true
	case typeUint64:
		return d.number(model.Uint(d.raw(regs, 4))), true
	case typeFloat32:
		return d.number(model.Float32(math.Float32frombits(uint32(d.raw(regs, 2))))), true
	case typeFloat64:
		return d.number(model.Float(math.Float64frombits(d.raw(regs, 4)))), true
	}
	return model.Value{}, false
}

// number applies scale and offset when configured.
func (d *tagDef) number(v model.Value) model.Value {
	if !d.scaled {
		return v
	}
	f, _ := v.Float64()
	return model.Float(d.affine.Apply(f))
}

// decodeString reads two characters per register, high byte first (swapped
// for BADC). The string ends at the first NUL; trailing spaces are trimmed,
// as devices pad fixed-length fields with either.
func (d *tagDef) decodeString(regs []uint16) string {
	var stack [2 * 125]byte
	buf := stack[:0]
	for _, r := range regs {
		hi, lo := byte(r>>8), byte(r)
		if d.byteSwap {
			hi, lo = lo, hi
		}
		buf = append(buf, hi, lo)
	}
	for i, c := range buf {
		if c == 0 {
			buf = buf[:i]
			break
		}
	}
	for len(buf) > 0 && buf[len(buf)-1] == ' ' {
		buf = buf[:len(buf)-1]
	}
	return string(buf)
}

// decodeBits decodes a bool from a coil or discrete input; bits start at
// the tag's address.
func (d *tagDef) decodeBits(bits []bool) (model.Value, bool) {
	if len(bits) == 0 || d.typ != typeBool {
		return model.Value{}, false
	}
	return model.Bool(bits[0]), true
}
