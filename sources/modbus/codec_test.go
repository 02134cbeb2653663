package modbus

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"

	"github.com/weir-edge/weir/internal/decimal"
	"github.com/weir-edge/weir/model"
)

// encode is the test side's encoder, written differently from the decoder:
// it lays the value's big-endian bytes out per the order's letter pattern.
func encode(typ dataType, ord order, v model.Value) []uint16 {
	n := typ.width(0)
	var be [8]byte
	switch v.Kind() {
	case model.KindInt:
		binary.BigEndian.PutUint64(be[:], uint64(v.AsInt()))
	case model.KindUint:
		binary.BigEndian.PutUint64(be[:], v.AsUint())
	case model.KindFloat:
		if typ == typeFloat32 {
			binary.BigEndian.PutUint64(be[:], uint64(math.Float32bits(float32(v.AsFloat()))))
		} else {
			binary.BigEndian.PutUint64(be[:], math.Float64bits(v.AsFloat()))
		}
	}
	b := slices.Clone(be[8-2*n:]) // ABCD...: most significant byte first
	switch ord {
	case orderDCBA:
		slices.Reverse(b)
	case orderBADC:
		for i := 0; i < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	case orderCDAB:
		for i, j := 0, len(b)-2; i < j; i, j = i+2, j-2 {
			b[i], b[i+1], b[j], b[j+1] = b[j], b[j+1], b[i], b[i+1]
		}
	}
	regs := make([]uint16, n)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return regs
}

func def(typ dataType, ord order) tagDef {
	return tagDef{path: "p", table: tableHolding, typ: typ, width: uint16(typ.width(0)),
		wordSwap: ord.wordSwap(), byteSwap: ord.byteSwap(), bit: -1, scale: 1, kind: typ.kind()}
}

var orders = []order{orderABCD, orderCDAB, orderBADC, orderDCBA}
var orderNames = []string{"ABCD", "CDAB", "BADC", "DCBA"}

func TestCodecRoundTrip(t *testing.T) {
	values := map[dataType][]model.Value{
		typeInt16:   {model.Int(0), model.Int(-1), model.Int(math.MinInt16), model.Int(math.MaxInt16), model.Int(0x1234)},
		typeUint16:  {model.Uint(0), model.Uint(math.MaxUint16), model.Uint(0x1234)},
		typeInt32:   {model.Int(-1), model.Int(math.MinInt32), model.Int(math.MaxInt32), model.Int(0x11223344)},
		typeUint32:  {model.Uint(0), model.Uint(math.MaxUint32), model.Uint(3_000_000_000)},
		typeInt64:   {model.Int(-1), model.Int(math.MinInt64), model.Int(math.MaxInt64), model.Int(0x1122334455667788)},
		typeUint64:  {model.Uint(math.MaxUint64), model.Uint(0x1122334455667788)},
		typeFloat32: {model.Float(21.5), model.Float(-0.125), model.Float(math.Inf(1)), model.Float(float64(math.MaxFloat32))},
		typeFloat64: {model.Float(-1234.5678), model.Float(math.SmallestNonzeroFloat64), model.Float(math.Inf(-1)), model.Float(1e300)},
	}
	for typ := typeInt16; typ <= typeFloat64; typ++ {
		for oi, ord := range orders {
			for _, v := range values[typ] {
				t.Run(typ.String()+"/"+orderNames[oi]+"/"+v.String(), func(t *testing.T) {
					d := def(typ, ord)
					regs := encode(typ, ord, v)
					got, ok := d.decodeRegs(regs)
					if !ok || !got.Equal(v) {
						t.Errorf("decode(encode(%v)) = %v, %v (regs %04x)", v, got, ok, regs)
					}
				})
			}
		}
	}
}

// TestCodecVectors pins the four orders to fixed register images, so that
// the round trip cannot pass with a mistake shared by encoder and decoder.
func TestCodecVectors(t *testing.T) {
	tests := []struct {
		name string
		typ  dataType
		ord  order
		regs []uint16
		want model.Value
	}{
		{"float32 ABCD", typeFloat32, orderABCD, []uint16{0x41AC, 0x0000}, model.Float(21.5)},
		{"float32 CDAB", typeFloat32, orderCDAB, []uint16{0x0000, 0x41AC}, model.Float(21.5)},
		{"float32 BADC", typeFloat32, orderBADC, []uint16{0xAC41, 0x0000}, model.Float(21.5)},
		{"float32 DCBA", typeFloat32, orderDCBA, []uint16{0x0000, 0xAC41}, model.Float(21.5)},
		{"uint32 ABCD", typeUint32, orderABCD, []uint16{0x1122, 0x3344}, model.Uint(0x11223344)},
		{"uint32 CDAB", typeUint32, orderCDAB, []uint16{0x3344, 0x1122}, model.Uint(0x11223344)},
		{"uint32 BADC", typeUint32, orderBADC, []uint16{0x2211, 0x4433}, model.Uint(0x11223344)},
		{"uint32 DCBA", typeUint32, orderDCBA, []uint16{0x4433, 0x2211}, model.Uint(0x11223344)},
		{"uint64 ABCD", typeUint64, orderABCD, []uint16{0x1122, 0x3344, 0x5566, 0x7788}, model.Uint(0x1122334455667788)},
		{"uint64 CDAB", typeUint64, orderCDAB, []uint16{0x7788, 0x5566, 0x3344, 0x1122}, model.Uint(0x1122334455667788)},
		{"uint64 BADC", typeUint64, orderBADC, []uint16{0x2211, 0x4433, 0x6655, 0x8877}, model.Uint(0x1122334455667788)},
		{"uint64 DCBA", typeUint64, orderDCBA, []uint16{0x8877, 0x6655, 0x4433, 0x2211}, model.Uint(0x1122334455667788)},
		{"int16 ABCD", typeInt16, orderABCD, []uint16{0xFB2E}, model.Int(-1234)},
		{"int16 CDAB same as ABCD", typeInt16, orderCDAB, []uint16{0xFB2E}, model.Int(-1234)},
		{"int16 BADC swaps bytes", typeInt16, orderBADC, []uint16{0x2EFB}, model.Int(-1234)},
		{"int16 DCBA swaps bytes", typeInt16, orderDCBA, []uint16{0x2EFB}, model.Int(-1234)},
		{"int32 negative", typeInt32, orderABCD, []uint16{0xFFFF, 0xFFFE}, model.Int(-2)},
		{"int64 negative CDAB", typeInt64, orderCDAB, []uint16{0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF}, model.Int(-2)},
		{"float64 ABCD", typeFloat64, orderABCD, []uint16{0x4009, 0x21FB, 0x5444, 0x2D18}, model.Float(math.Pi)},
		{"extra registers ignored", typeUint16, orderABCD, []uint16{7, 8, 9}, model.Uint(7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := def(tt.typ, tt.ord)
			got, ok := d.decodeRegs(tt.regs)
			if !ok || !got.Equal(tt.want) {
				t.Errorf("got %v (%v), want %v", got, ok, tt.want)
			}
		})
	}
}

func TestCodecShortInput(t *testing.T) {
	for typ := typeInt16; typ <= typeFloat64; typ++ {
		t.Run(typ.String(), func(t *testing.T) {
			d := def(typ, orderABCD)
			if _, ok := d.decodeRegs(make([]uint16, d.width-1)); ok {
				t.Error("decoded from too few registers")
			}
		})
	}
}

func TestCodecBitsStringsScale(t *testing.T) {
	str := func(length int, ord order) tagDef {
		d := def(typeString, ord)
		d.width = uint16(length)
		return d
	}
	bit := func(b int8) tagDef { d := def(typeBool, orderABCD); d.bit = b; return d }
	scaled := func(typ dataType, scale, offset float64) tagDef {
		d := def(typ, orderABCD)
		d.scaled, d.scale, d.offset, d.kind = true, scale, offset, model.KindFloat
		d.affine = decimal.NewAffine(scale, offset)
		return d
	}
	tests := []struct {
		name string
		d    tagDef
		regs []uint16
		want model.Value
	}{
		{"string", str(3, orderABCD), []uint16{0x6865, 0x6C6C, 0x6F00}, model.String("hello")},
		{"string BADC", str(3, orderBADC), []uint16{0x6568, 0x6C6C, 0x006F}, model.String("hello")},
		{"string trailing spaces", str(3, orderABCD), []uint16{0x6869, 0x2020, 0x2020}, model.String("hi")},
		{"string stops at NUL", str(3, orderABCD), []uint16{0x6869, 0x0041, 0x4242}, model.String("hi")},
		{"string inner space kept", str(2, orderABCD), []uint16{0x6120, 0x6220}, model.String("a b")},
		{"string empty", str(2, orderABCD), []uint16{0, 0}, model.String("")},
		{"string full", str(1, orderABCD), []uint16{0x4142}, model.String("AB")},
		{"bit 0 set", bit(0), []uint16{0x0001}, model.Bool(true)},
		{"bit 3 set", bit(3), []uint16{0x0008}, model.Bool(true)},
		{"bit 3 clear", bit(3), []uint16{0xFFF7}, model.Bool(false)},
		{"bit 15 set", bit(15), []uint16{0x8000}, model.Bool(true)},
		{"scale int16", scaled(typeInt16, 0.5, 10), []uint16{0xFF9C}, model.Float(-40)},
		{"offset uint16", scaled(typeUint16, 1, -273.25), []uint16{300}, model.Float(26.75)},
		{"scale float32", scaled(typeFloat32, 2, 0), []uint16{0x41AC, 0}, model.Float(43)},
		{"scale uint64", scaled(typeUint64, 0.001, 0), []uint16{0, 0, 0, 1000}, model.Float(1)},
		// Decimal in, decimal out: not -0.8200000000000001.
		{"scale int16 decimal", scaled(typeInt16, 0.01, 0), []uint16{0xFFAE}, model.Float(-0.82)},
		{"float32 decimal", def(typeFloat32, orderABCD), []uint16{0x3F51, 0xEB85}, model.Float(0.82)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.d.decodeRegs(tt.regs)
			if !ok || !got.Equal(tt.want) {
				t.Errorf("got %v (%v), want %v", got, ok, tt.want)
			}
		})
	}
	t.Run("coil", func(t *testing.T) {
		d := def(typeBool, orderABCD)
		d.table = tableCoil
		for _, b := range []bool{true, false} {
			if v, ok := d.decodeBits([]bool{b, !b}); !ok || !v.Equal(model.Bool(b)) {
				t.Errorf("decodeBits(%v) = %v, %v", b, v, ok)
			}
		}
		if _, ok := d.decodeBits(nil); ok {
			t.Error("decoded a bit from nothing")
		}
	})
}

func TestCompileTag(t *testing.T) {
	bit, scale := 3, 0.1
	d := compileTag("a/b", &TagConfig{Name: "x", Table: "input", Address: 7, Type: "bool", Bit: &bit})
	if d.path != "a/b/x" || d.table != tableInput || d.addr != 7 || d.width != 1 || d.bit != 3 || d.kind != model.KindBool {
		t.Errorf("bool bit: %+v", d)
	}
	d = compileTag("", &TagConfig{Name: "y", Table: "holding", Type: "int32", Order: "DCBA", Scale: &scale})
	if d.path != "y" || !d.wordSwap || !d.byteSwap || !d.scaled || d.scale != 0.1 || d.offset != 0 || d.kind != model.KindFloat || d.width != 2 {
		t.Errorf("scaled int32: %+v", d)
	}
	d = compileTag("", &TagConfig{Name: "s", Table: "holding", Type: "string", Length: 10})
	if d.width != 10 || d.kind != model.KindString {
		t.Errorf("string: %+v", d)
	}
}

// FuzzDecode feeds arbitrary tag definitions and register/bit contents to
// the decoder: it must never panic, and a definition that validates must
// decode whenever enough registers are present.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(7), uint8(2), uint8(1), int8(-1), uint8(2), false, []byte{0x41, 0xAC, 0, 0})
	f.Add(uint8(9), uint8(2), uint8(2), int8(-1), uint8(3), false, []byte("hello world"))
	f.Add(uint8(0), uint8(3), uint8(0), int8(15), uint8(0), true, []byte{0xff, 0xff})
	f.Add(uint8(0), uint8(0), uint8(0), int8(-1), uint8(0), false, []byte{1})
	f.Add(uint8(200), uint8(200), uint8(200), int8(100), uint8(255), true, []byte{})
	f.Fuzz(func(t *testing.T, typB, tblB, ordB uint8, bitB int8, length uint8, scaled bool, data []byte) {
		tc := TagConfig{
			Name:    "f",
			Table:   tableNames[int(tblB)%len(tableNames)],
			Type:    typeNames[int(typB)%len(typeNames)],
			Order:   orderNames[int(ordB)%len(orderNames)],
			Length:  int(length),
			Address: 0,
		}
		if tblB >= 128 {
			tc.Table = "nonsense" // unknown names compile to zero values
		}
		if bitB >= 0 {
			b := int(bitB)
			tc.Bit = &b
		}
		if scaled {
			s, o := 0.5, 1.0
			tc.Scale, tc.Offset = &s, &o
		}
		regs := make([]uint16, len(data)/2)
		for i := range regs {
			regs[i] = binary.BigEndian.Uint16(data[2*i:])
		}
		bits := make([]bool, len(data))
		for i, c := range data {
			bits[i] = c&1 == 1
		}
		d := compileTag("ns", &tc)
		v, ok := d.decodeRegs(regs)
		_, _ = d.decodeBits(bits)
		if ok {
			_ = v.String()
		}
		valid := tc.validate(125, 2000) == nil
		if valid && !d.table.isBits() && len(regs) >= int(d.width) && !ok {
			t.Errorf("valid tag %+v did not decode %d registers", tc, len(regs))
		}
		if valid && ok && v.Kind() != d.kind {
			t.Errorf("kind %s, want %s", v.Kind(), d.kind)
		}
		// Raw definitions the config could never produce.
		raw := tagDef{typ: dataType(typB), width: uint16(length), bit: bitB, wordSwap: ordB&1 == 1, byteSwap: ordB&2 == 2}
		_, _ = raw.decodeRegs(regs)
		_, _ = raw.decodeBits(bits)
	})
}

func BenchmarkDecode(b *testing.B) {
	regs := []uint16{0x1122, 0x3344, 0x5566, 0x7788, 0x6869, 0x2020, 0, 0}
	cases := []struct {
		name string
		d    tagDef
	}{
		{"int16", def(typeInt16, orderABCD)},
		{"float32_CDAB", def(typeFloat32, orderCDAB)},
		{"float64_DCBA", def(typeFloat64, orderDCBA)},
		{"uint64_scaled", func() tagDef {
			d := def(typeUint64, orderBADC)
			d.scaled, d.scale, d.affine = true, 0.1, decimal.NewAffine(0.1, 0)
			return d
		}()},
		{"bool_bit", func() tagDef { d := def(typeBool, orderABCD); d.bit = 5; return d }()},
		{"string_8", func() tagDef { d := def(typeString, orderABCD); d.width = 8; return d }()},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var s model.Sample
			for b.Loop() {
				s.Value, _ = c.d.decodeRegs(regs)
			}
			_ = s
		})
	}
}
