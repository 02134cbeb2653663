package model

import (
	"math"
	"testing"
)

func TestFloat32(t *testing.T) {
	for _, tt := range []struct {
		in   float32
		want string // JSON of the value
	}{
		{0.82, "0.82"},
		{-0.82, "-0.82"},
		{21.5, "21.5"},
		{1e-7, "1e-7"},
		{1234.5677, "1234.5677"},
		{16777216, "16777216"},
		// The largest float32's shortest decimal is beyond it as a float64
		// and does not convert back: the exact widening is kept.
		{math.MaxFloat32, "3.4028234663852886e+38"},
		{float32(math.Inf(1)), "null"},
		{float32(math.NaN()), "null"},
	} {
		v := Float32(tt.in)
		if got := string(v.AppendJSON(nil)); got != tt.want {
			t.Errorf("Float32(%v) encodes as %s, want %s", tt.in, got, tt.want)
		}
		// Nothing the device sent is lost.
		if f := v.AsFloat(); !math.IsNaN(f) && float32(f) != tt.in {
			t.Errorf("Float32(%v) = %v does not round-trip to float32", tt.in, f)
		}
	}
	// Every float32 bit pattern in a sweep round-trips.
	for bits := uint32(0); bits < 1<<32-1<<24; bits += 1<<24 - 12345 {
		f := math.Float32frombits(bits)
		if g := Float32(f).AsFloat(); !math.IsNaN(g) && float32(g) != f {
			t.Fatalf("bits %#x: %v does not round-trip", bits, g)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Float32(0.82) }); n != 0 {
		t.Errorf("Float32 allocates %v times", n)
	}
}

// TestJSONFloat: shortest digits that read back exactly, plain notation in
// the range people read, exponent beyond it.
func TestJSONFloat(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{
		{-0.82, "-0.82"}, {0, "0"}, {math.Copysign(0, -1), "-0"}, {21, "21"}, {1.5, "1.5"},
		{18000000000.123, "18000000000.123"}, {1e20, "100000000000000000000"}, {1e21, "1e+21"},
		{1.5e300, "1.5e+300"}, {1e-6, "0.000001"}, {1e-7, "1e-7"}, {-2.5e-10, "-2.5e-10"},
		{5e-324, "5e-324"},
	} {
		if got := string(Float(tt.in).AppendJSON(nil)); got != tt.want {
			t.Errorf("%v encodes as %s, want %s", tt.in, got, tt.want)
		}
	}
}
