package sim

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOrderVectors pins the four register orders to known wire layouts, for
// 32- and 64-bit values, so the simulator and the Modbus source agree.
func TestOrderVectors(t *testing.T) {
	tests := []struct {
		order string
		raw   uint64
		n     int
		want  []uint16
	}{
		{OrderABCD, 0xAABBCCDD, 2, []uint16{0xAABB, 0xCCDD}},
		{OrderCDAB, 0xAABBCCDD, 2, []uint16{0xCCDD, 0xAABB}},
		{OrderBADC, 0xAABBCCDD, 2, []uint16{0xBBAA, 0xDDCC}},
		{OrderDCBA, 0xAABBCCDD, 2, []uint16{0xDDCC, 0xBBAA}},
		{OrderABCD, 0x1122334455667788, 4, []uint16{0x1122, 0x3344, 0x5566, 0x7788}},
		{OrderCDAB, 0x1122334455667788, 4, []uint16{0x7788, 0x5566, 0x3344, 0x1122}},
		{OrderBADC, 0x1122334455667788, 4, []uint16{0x2211, 0x4433, 0x6655, 0x8877}},
		{OrderDCBA, 0x1122334455667788, 4, []uint16{0x8877, 0x6655, 0x4433, 0x2211}},
		{OrderBADC, 0xA1B2, 1, []uint16{0xB2A1}},
		{OrderCDAB, 0xA1B2, 1, []uint16{0xA1B2}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.order, tt.n), func(t *testing.T) {
			spec := TagSpec{Order: tt.order}
			regs := make([]uint16, tt.n)
			putRaw(regs, tt.raw, tt.n, spec.wordSwap(), spec.byteSwap())
			if !slices.Equal(regs, tt.want) {
				t.Errorf("putRaw = %04x, want %04x", regs, tt.want)
			}
			if got := getRaw(regs, tt.n, spec.wordSwap(), spec.byteSwap()); got != tt.raw {
				t.Errorf("getRaw = %#x, want %#x", got, tt.raw)
			}
		})
	}
}

func FuzzOrderRoundTrip(f *testing.F) {
	f.Add(uint64(0x1122334455667788), uint8(0), uint8(2))
	f.Fuzz(func(t *testing.T, raw uint64, ord, width uint8) {
		orders := []string{OrderABCD, OrderCDAB, OrderBADC, OrderDCBA}
		spec := TagSpec{Order: orders[int(ord)%4]}
		n := []int{1, 2, 4}[int(width)%3]
		if n < 4 {
			raw &= 1<<(16*n) - 1
		}
		regs := make([]uint16, n)
		putRaw(regs, raw, n, spec.wordSwap(), spec.byteSwap())
		if got := getRaw(regs, n, spec.wordSwap(), spec.byteSwap()); got != raw {
			t.Fatalf("%s/%d: %#x → %04x → %#x", spec.Order, n, raw, regs, got)
		}
	})
}

// TestTagSpecYAML checks the map marshals to source tag keys (no
// `writable`, optional keys omitted) and back without loss.
func TestTagSpecYAML(t *testing.T) {
	specs := PlantTags()
	out, err := yaml.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "writable") {
		t.Error("Writable is marshalled; the source's strict decoder would refuse it")
	}
	var back []TagSpec
	dec := yaml.NewDecoder(strings.NewReader(string(out)))
	dec.KnownFields(true)
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	for i := range specs {
		specs[i].Writable = false
	}
	if !reflect.DeepEqual(back, specs) {
		t.Error("TagSpec YAML round trip lost information")
	}
}
