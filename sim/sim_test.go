package sim

import (
	"context"
	"encoding/binary"
	"io"
	"log"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// serve starts a server for units on 127.0.0.1:0, closed at test end.
func serve(t testing.TB, step time.Duration, units ...Unit) *Server {
	t.Helper()
	s, err := Serve(context.Background(), "127.0.0.1:0", ServeOptions{Units: units, Step: step}, quietLog())
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// dial opens a simonvetter client to addr, closed at test end.
func dial(t testing.TB, addr string) *modbus.ModbusClient {
	t.Helper()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{
		URL: "tcp://" + addr, Timeout: 5 * time.Second, Logger: log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if err := c.Open(); err != nil {
		t.Fatalf("Open %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// wireBytes lays registers out as they travel: big-endian within each
// register, in address order.
func wireBytes(regs []uint16) []byte {
	b := make([]byte, 2*len(regs))
	for i, r := range regs {
		binary.BigEndian.PutUint16(b[2*i:], r)
	}
	return b
}

// toBigEndian rearranges wire bytes into the value's big-endian bytes per
// order. Written from the order letters, independently of the package's
// putRaw/getRaw, so a symmetric bug in those cannot hide.
func toBigEndian(wire []byte, order string) []byte {
	b := slices.Clone(wire)
	n := len(b) / 2
	switch order {
	case OrderCDAB: // registers arrive least significant first
		for i := 0; i < n/2; i++ {
			b[2*i], b[2*i+1], b[2*(n-1-i)], b[2*(n-1-i)+1] = b[2*(n-1-i)], b[2*(n-1-i)+1], b[2*i], b[2*i+1]
		}
	case OrderBADC: // bytes swapped in each register
		for i := 0; i < n; i++ {
			b[2*i], b[2*i+1] = b[2*i+1], b[2*i]
		}
	case OrderDCBA: // fully little-endian
		slices.Reverse(b)
	}
	return b
}

// decodeTag is the test's own Modbus decoder: it turns a tag's registers
// into bool, float64 (floats and scaled numbers), uint64 (unscaled
// unsigned), float64 for unscaled signed, or string, like Values does.
func decodeTag(spec TagSpec, regs []uint16) any {
	if spec.Type == TypeBool {
		return regs[0]>>uint(*spec.Bit)&1 == 1
	}
	wire := wireBytes(regs[:spec.Width()])
	if spec.Type == TypeString {
		b := wire
		if spec.Order == OrderBADC {
			b = toBigEndian(wire, OrderBADC)
		}
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			b = b[:i]
		}
		return strings.TrimRight(string(b), " ")
	}
	be := toBigEndian(wire, spec.Order)
	var f float64
	var u uint64
	unsigned := false
	switch spec.Type {
	case TypeInt16:
		f = float64(int16(binary.BigEndian.Uint16(be)))
	case TypeUint16:
		u, unsigned = uint64(binary.BigEndian.Uint16(be)), true
	case TypeInt32:
		f = float64(int32(binary.BigEndian.Uint32(be)))
	case TypeUint32:
		u, unsigned = uint64(binary.BigEndian.Uint32(be)), true
	case TypeInt64:
		f = float64(int64(binary.BigEndian.Uint64(be)))
	case TypeUint64:
		u, unsigned = binary.BigEndian.Uint64(be), true
	case TypeFloat32:
		f = float64(math.Float32frombits(binary.BigEndian.Uint32(be)))
	case TypeFloat64:
		f = math.Float64frombits(binary.BigEndian.Uint64(be))
	}
	if unsigned {
		f = float64(u)
	}
	if spec.Scale != nil || spec.Offset != nil {
		s, o := 1.0, 0.0
		if spec.Scale != nil {
			s = *spec.Scale
		}
		if spec.Offset != nil {
			o = *spec.Offset
		}
		return f*s + o
	}
	if unsigned {
		return u
	}
	return f
}

// matches compares a decoded value with the model's, allowing for the
// encoding's resolution: half a step for scaled integers, float32 rounding.
func matches(spec TagSpec, got, want any) bool {
	switch w := want.(type) {
	case bool, string:
		return got == want
	case uint64:
		g, ok := got.(uint64)
		return ok && g == w
	case float64:
		var g float64
		switch v := got.(type) {
		case float64:
			g = v
		case uint64:
			g = float64(v)
		default:
			return false
		}
		tol := 0.0
		switch {
		case spec.Type == TypeFloat32:
			tol = math.Abs(w) * 1e-6
		case spec.Type == TypeFloat64:
			tol = 0
		case spec.Scale != nil:
			tol = *spec.Scale/2 + 1e-9
		default:
			tol = 0.5 // unscaled integers round
		}
		return math.Abs(g-w) <= tol
	}
	return false
}

// readTag reads one tag over the client, from the table its spec names.
func readTag(t testing.TB, c *modbus.ModbusClient, spec TagSpec) any {
	t.Helper()
	var (
		regs []uint16
		bits []bool
		err  error
	)
	a, w := uint16(spec.Address), uint16(spec.Width())
	switch spec.Table {
	case TableCoil:
		bits, err = c.ReadCoils(a, 1)
	case TableDiscrete:
		bits, err = c.ReadDiscreteInputs(a, 1)
	case TableHolding:
		regs, err = c.ReadRegisters(a, w, modbus.HOLDING_REGISTER)
	case TableInput:
		regs, err = c.ReadRegisters(a, w, modbus.INPUT_REGISTER)
	}
	if err != nil {
		t.Fatalf("read %s (%s %d): %v", spec.Name, spec.Table, spec.Address, err)
	}
	if bits != nil {
		return bits[0]
	}
	return decodeTag(spec, regs)
}

// specByName finds a plant tag.
func specByName(t testing.TB, name string) TagSpec {
	t.Helper()
	for _, s := range PlantTags() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no tag %q", name)
	return TagSpec{}
}
