package logcapture

import (
	"bytes"
	"context"
	"encoding/json"
	stdlog "log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	opcuadebug "github.com/gopcua/opcua/debug"
	"github.com/weir-edge/weir/internal/third_party/gopcua/server"
)

// syncBuffer is a bytes.Buffer safe for the handler's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records decodes the JSON lines in out.
func records(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a slog JSON record: %q", line)
		}
		rs = append(rs, r)
	}
	return rs
}

func find(rs []map[string]any, msgPrefix string) map[string]any {
	for _, r := range rs {
		if m, _ := r["msg"].(string); strings.Contains(m, msgPrefix) {
			return r
		}
	}
	return nil
}

// raw stands in for the process's stderr: the standard logger's and
// gopcua's debug logger's destination before capture.
var raw = &syncBuffer{}

func TestMain(m *testing.M) {
	stdlog.SetOutput(raw)
	opcuadebug.Logger = stdlog.New(raw, "debug: ", 0)
	os.Exit(m.Run())
}

// install captures into a JSON handler at level until the test ends.
func install(t *testing.T, level slog.Level) (raw, out *syncBuffer) {
	out = &syncBuffer{}
	restore := Install(slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})))
	t.Cleanup(restore)
	return rawOutput(), out
}

func rawOutput() *syncBuffer { return raw }

// TestStdLogBecomesRecord: a log.Print anywhere in the process is a slog
// record with component, package and a level.
func TestStdLogBecomesRecord(t *testing.T) {
	raw, out := install(t, slog.LevelDebug)
	stdlog.Print("plain line from weir")
	stdlog.Printf("connection failed: %s", "refused")
	if raw.String() != "" {
		t.Fatalf("raw output: %q", raw.String())
	}
	rs := records(t, out.String())
	for _, tt := range []struct{ msg, level string }{
		{"plain line from weir", "INFO"},
		{"connection failed: refused", "WARN"},
	} {
		r := find(rs, tt.msg)
		if r == nil {
			t.Fatalf("no record %q in %s", tt.msg, out)
		}
		if r["level"] != tt.level || r["component"] != Component || r["package"] != "github.com/weir-edge/weir/internal/logcapture" {
			t.Errorf("record %v, want level %s, component %s, this package", r, tt.level, Component)
		}
	}
}

// TestGopcuaChatterIsCaptured builds gopcua's server, which prints "New
// Node Set", "doing objects." etc. with the log package: none of it
// reaches stderr raw; it is debug records of the gopcua package, hidden
// at info level.
func TestGopcuaChatterIsCaptured(t *testing.T) {
	raw, out := install(t, slog.LevelDebug)
	_ = server.New(server.EndPoint("127.0.0.1", 0)) // imports its node set, printing
	prevEnable := opcuadebug.Enable
	opcuadebug.Enable = true // as OPC_DEBUG=debug does
	opcuadebug.Printf("debug package line")
	opcuadebug.Enable = prevEnable
	if raw.String() != "" {
		t.Fatalf("gopcua wrote to stderr raw:\n%s", raw)
	}
	rs := records(t, out.String())
	for _, msg := range []string{"New Node Set", "doing objects.", "debug package line"} {
		r := find(rs, msg)
		if r == nil {
			t.Fatalf("no record %q in %s", msg, out)
		}
		if r["level"] != "DEBUG" || r["component"] != Component || !isGopcua(r["package"].(string)) {
			t.Errorf("record %v, want a DEBUG record of a gopcua package", r)
		}
	}
}

// TestOwnLinesKeptAtInfo: at the default level Weir's own
// log.Print lines are dropped, Weir's own are kept.
func TestOwnLinesKeptAtInfo(t *testing.T) {
	_, out := install(t, slog.LevelInfo)
	w := NewWriter(slog.New(slog.NewJSONHandler(out, nil)))
	lib := stdlog.New(w, "", 0)
	lib.Print("from weir") // this package: Weir's own code
	if rs := records(t, out.String()); find(rs, "from weir") == nil || rs[0]["level"] != "INFO" {
		t.Fatalf("records %v", rs)
	}
}

// TestPahoLoggers: paho.mqtt.golang's package loggers and the per-client
// Logger log through the installed handler at their levels.
func TestPahoLoggers(t *testing.T) {
	_, out := install(t, slog.LevelDebug)
	mqtt3.ERROR.Println("[client]", "connection lost")
	mqtt3.DEBUG.Printf("[net] %s", "outgoing")
	Logger("paho", slog.LevelWarn).Printf("v5 error %d", 1)
	rs := records(t, out.String())
	for _, tt := range []struct{ msg, level string }{
		{"[client] connection lost", "ERROR"},
		{"[net] outgoing", "DEBUG"},
		{"v5 error 1", "WARN"},
	} {
		r := find(rs, tt.msg)
		if r == nil || r["level"] != tt.level || r["component"] != "paho" {
			t.Errorf("record for %q = %v, want level %s, component paho", tt.msg, r, tt.level)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		pkg, msg string
		want     slog.Level
	}{
		{"github.com/weir-edge/weir/internal/third_party/gopcua/server", "doing objects.", slog.LevelDebug},
		{"github.com/weir-edge/weir/internal/third_party/gopcua/server", "error adding endpoint to config", slog.LevelWarn},
		{"github.com/weir-edge/weir/sim", "started", slog.LevelInfo},
		{"", "who knows", slog.LevelInfo},
		{"net/http", "http: TLS handshake error from 1.2.3.4", slog.LevelWarn},
	} {
		if got := Classify(tt.pkg, tt.msg); got != tt.want {
			t.Errorf("Classify(%q, %q) = %v, want %v", tt.pkg, tt.msg, got, tt.want)
		}
	}
}

// TestRestore: after restore, lines go where they went before capture.
func TestRestore(t *testing.T) {
	out := &syncBuffer{}
	restore := Install(slog.New(slog.NewJSONHandler(out, nil)))
	restore()
	stdlog.Print("after restore")
	if !strings.Contains(raw.String(), "after restore") || strings.Contains(out.String(), "after restore") {
		t.Fatalf("raw %q, captured %q", raw, out)
	}
	raw.mu.Lock()
	raw.b.Reset()
	raw.mu.Unlock()
}

func TestUTCTime(t *testing.T) {
	at := time.Date(2026, 3, 4, 6, 6, 7, 123456789, time.FixedZone("CET", 3600))
	for _, json := range []bool{false, true} {
		var b bytes.Buffer
		opts := &slog.HandlerOptions{ReplaceAttr: UTCTime}
		var h slog.Handler = slog.NewTextHandler(&b, opts)
		if json {
			h = slog.NewJSONHandler(&b, opts)
		}
		r := slog.NewRecord(at, slog.LevelInfo, "m", 0)
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "2026-03-04T05:06:07.123Z") {
			t.Errorf("json=%v: %s, want the time in UTC with ms", json, b.String())
		}
	}
}

// TestDisabledPrinterIsFree: paho's DEBUG logger is called per packet; at
// info level the call costs no formatting or allocation of its own.
func TestDisabledPrinterIsFree(t *testing.T) {
	install(t, slog.LevelInfo)
	p := Logger("paho", slog.LevelDebug)
	arg := any("x")
	if n := testing.AllocsPerRun(100, func() { p.Printf("[net] %s", arg) }); n != 0 {
		t.Errorf("disabled Printf allocates %v times", n)
	}
}

// isGopcua: gopcua's own packages, or the patched copy of them.
func isGopcua(pkg string) bool {
	return strings.HasPrefix(pkg, "github.com/gopcua/opcua/") || strings.HasPrefix(pkg, thirdPartyPrefix+"gopcua/")
}
