package modbus

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// systemPython is Debian's interpreter, which sees python3-pymodbus; a
// pyenv python first on PATH would not.
const systemPython = "/usr/bin/python3"

// TestPymodbusInterop reads from a Modbus server nobody here wrote:
// pymodbus (Debian's python3-pymodbus 3.0), serving known values of several
// types from testdata/pymodbus_server.py.
func TestPymodbusInterop(t *testing.T) {
	if out, err := exec.Command(systemPython, "-c", "import pymodbus").CombinedOutput(); err != nil {
		msg := "pymodbus peer unavailable: " + systemPython + " cannot import pymodbus (apt-get install python3-pymodbus): " +
			strings.TrimSpace(string(out))
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(systemPython, "testdata/pymodbus_server.py", "0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the server exits on EOF
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		<-drained
	})
	var port string
	select {
	case l := <-lines:
		f := strings.Fields(l)
		if len(f) != 2 || f[0] != "ready" {
			t.Fatalf("pymodbus server said %q, stderr: %s", l, stderr.String())
		}
		port = f[1]
	case <-drained: // stdout closed before "ready": the server died
		_ = cmd.Wait() // lets the stderr copy finish
		t.Fatalf("pymodbus server exited before it was ready; stderr: %s", stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("pymodbus server not ready after 2 min; stderr: %s", stderr.String())
	}

	cfg := Config{Devices: []DeviceConfig{{
		Name: "py", Address: "127.0.0.1:" + port, Namespace: "interop", Timeout: 2 * time.Second,
		Groups: []GroupConfig{{Interval: 50 * time.Millisecond, Tags: []TagConfig{
			{Name: "i16", Table: "holding", Address: 0, Type: "int16"},
			{Name: "u32_cdab", Table: "holding", Address: 1, Type: "uint32", Order: "CDAB"},
			{Name: "f32", Table: "holding", Address: 3, Type: "float32"},
			{Name: "f64", Table: "holding", Address: 5, Type: "float64"},
			{Name: "str", Table: "holding", Address: 10, Type: "string", Length: 5},
			{Name: "u16_in", Table: "input", Address: 0, Type: "uint16"},
			{Name: "u16_scaled", Table: "input", Address: 0, Type: "uint16", Scale: new(0.1), Offset: new(1.0)},
			{Name: "coil0", Table: "coil", Address: 0, Type: "bool"},
			{Name: "coil1", Table: "coil", Address: 1, Type: "bool"},
			{Name: "coil7", Table: "coil", Address: 7, Type: "bool"},
			{Name: "di1", Table: "discrete_input", Address: 1, Type: "bool"},
			{Name: "di3", Table: "discrete_input", Address: 3, Type: "bool"},
			{Name: "bit_hi", Table: "holding", Address: 3, Type: "bool", Bit: intp(14)}, // 0x41AC: bit 14 set
			{Name: "bit_lo", Table: "holding", Address: 3, Type: "bool", Bit: intp(1)},  // bit 1 clear
		}}},
	}}}
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	b := rec.waitFor(t, 10*time.Second, "a batch", func(b [][]model.Sample) bool { return len(b) > 0 })[0]
	raw, scale := 4321.0, 0.1 // computed at run time, as the source does
	want := map[string]model.Value{
		"interop/i16":        model.Int(-1234),
		"interop/u32_cdab":   model.Uint(3_000_000_000),
		"interop/f32":        model.Float(21.5),
		"interop/f64":        model.Float(-1234.5678),
		"interop/str":        model.String("weir-pymb"),
		"interop/u16_in":     model.Uint(4321),
		"interop/u16_scaled": model.Float(raw*scale + 1),
		"interop/coil0":      model.Bool(true),
		"interop/coil1":      model.Bool(false),
		"interop/coil7":      model.Bool(true),
		"interop/di1":        model.Bool(true),
		"interop/di3":        model.Bool(false),
		"interop/bit_hi":     model.Bool(true),
		"interop/bit_lo":     model.Bool(false),
	}
	if len(b) != len(want) {
		t.Fatalf("batch of %d samples, want %d: %v", len(b), len(want), b)
	}
	for _, s := range b {
		w := want[s.Path]
		if !s.Quality.IsGood() || !s.Value.Equal(w) {
			t.Errorf("%s = %v (%v), want %v", s.Path, s.Value, s.Quality, w)
		}
	}
	// holding 0..14 (gaps ≤ 8), input 0, coils 0..7, discrete 1..3.
	if g := src.Status().Children[0].Gauges["requests_per_cycle"]; g != 4 {
		t.Errorf("requests_per_cycle = %v, want 4", g)
	}
}

// lockedBuffer is a bytes.Buffer the child's stderr copier writes to while
// the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
