package ua

import (
	"runtime"
	"testing"
)

// Hostile Variants are refused without a panic and without allocating
// more than their bytes justify (weir patch; see ../README.md).
func TestHostileVariant(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"dimension count 0x30303030", []byte{0xc6, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30}},
		{"negative length", []byte("\x91000\xdc0")},
		{"length beyond the bytes", []byte{0x86, 0xff, 0xff, 0x00, 0x00, 1, 0, 0, 0}},
		{"wrapping dimensions", []byte{0xc6, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var v Variant
			if _, err := v.Decode(c.b); err == nil {
				t.Fatalf("decoded %v", v.Value())
			}
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
				t.Fatalf("allocated %d bytes", got)
			}
		})
	}
}

func TestReadNNegative(t *testing.T) {
	b := NewBuffer([]byte{1, 2, 3})
	if b.ReadN(-1) != nil || b.Error() == nil {
		t.Fatal("negative length read")
	}
}

// A Variant nested a million levels deep (Variant of DataValue of Variant
// …, 2 MB) is refused; before the bound it overflowed the goroutine stack,
// a fatal error. Nesting a real message uses still decodes.
func TestNestingBound(t *testing.T) {
	nested := func(levels int) []byte {
		b := make([]byte, 0, 2*levels+2)
		for i := 0; i < levels; i++ {
			b = append(b, byte(TypeIDDataValue), DataValueValue)
		}
		return append(b, byte(TypeIDBoolean), 1)
	}
	var v Variant
	if _, err := v.Decode(nested(1 << 20)); err != StatusBadEncodingLimitsExceeded {
		t.Fatalf("a million levels: %v", err)
	}
	if n := nesting.Load(); n != 0 {
		t.Fatalf("%d levels still counted after the refusal", n)
	}
	if _, err := v.Decode(nested(100)); err != nil {
		t.Fatalf("100 levels: %v", err)
	}
}
