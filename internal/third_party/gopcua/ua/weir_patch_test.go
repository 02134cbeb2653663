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
