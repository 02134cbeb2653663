package logcapture

import (
	"bytes"
	"context"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	opcuadebug "github.com/gopcua/opcua/debug"
)

// Component is the component attribute of records from the log package.
const Component = "stdlog"

// modulePrefix marks Weir's own packages (their log.Print is Info);
// thirdPartyPrefix the copies of other projects inside it, whose chatter
// is Debug like any library's (internal/third_party/gopcua).
const (
	modulePrefix     = "github.com/weir-edge/weir/"
	thirdPartyPrefix = modulePrefix + "internal/third_party/"
)

var (
	// hookOnce sets the process globals once; from then on they forward
	// to current, so Install and restore are a pointer swap and race with
	// nothing (libraries read their globals from their own goroutines).
	hookOnce sync.Once
	// current is the logger of the latest Install still in force.
	current atomic.Pointer[slog.Logger]
	// fallback is where the standard logger wrote before the first
	// Install; it gets the lines while no Install is in force.
	fallback io.Writer
)

// Install routes the standard logger, gopcua's debug logger and paho's
// package loggers into log, and returns a function that puts back the
// logger in force before (or, with none, the standard logger's original
// output). Paho formats debug lines only when log is enabled at debug.
func Install(log *slog.Logger) (restore func()) {
	hookOnce.Do(hook)
	prev := current.Swap(log)
	return func() { current.CompareAndSwap(log, prev) }
}

func hook() {
	fallback = stdlog.Writer()
	w := stdWriter{}
	stdlog.SetOutput(w)
	stdlog.SetFlags(0) // slog stamps the time
	stdlog.SetPrefix("")
	opcuadebug.Logger = stdlog.New(w, "", 0)
	mqtt3.ERROR = Logger("paho", slog.LevelError)
	mqtt3.CRITICAL = Logger("paho", slog.LevelError)
	mqtt3.WARN = Logger("paho", slog.LevelWarn)
	mqtt3.DEBUG = Logger("paho", slog.LevelDebug)
}

// stdWriter is the standard logger's output: a Writer for the installed
// logger, or the original output while none is installed.
type stdWriter struct{}

func (stdWriter) Write(p []byte) (int, error) {
	l := current.Load()
	if l == nil {
		return fallback.Write(p)
	}
	return (&Writer{log: l}).Write(p)
}

// Printer is what paho.golang's SetErrorLogger/SetDebugLogger and
// paho.mqtt.golang's package loggers take.
type Printer interface {
	Println(v ...any)
	Printf(format string, v ...any)
}

// Logger returns a Printer that logs at level with the given component
// through the logger of the last Install (discarding before any), for
// libraries that take a Println/Printf logger per client.
func Logger(component string, level slog.Level) Printer {
	return lazyPrinter{component: component, level: level}
}

// lazyPrinter resolves the installed logger at each call, so a client
// built before Install still logs to it.
type lazyPrinter struct {
	component string
	level     slog.Level
}

func (p lazyPrinter) Println(v ...any) {
	if l := p.logger(); l != nil {
		l.Log(context.Background(), p.level, strings.TrimSuffix(fmt.Sprintln(v...), "\n"), "component", p.component)
	}
}

func (p lazyPrinter) Printf(format string, v ...any) {
	if l := p.logger(); l != nil {
		l.Log(context.Background(), p.level, strings.TrimSuffix(fmt.Sprintf(format, v...), "\n"), "component", p.component)
	}
}

// logger is the installed logger when it takes p's level, else nil: paho
// calls its DEBUG logger per packet, so the common case must cost no
// formatting and no allocation.
func (p lazyPrinter) logger() *slog.Logger {
	if l := current.Load(); l != nil && l.Enabled(context.Background(), p.level) {
		return l
	}
	return nil
}

// Writer turns each line written by a log.Logger into a slog record,
// attributed to the package that called the log function.
type Writer struct {
	log *slog.Logger
}

var _ io.Writer = (*Writer)(nil)

// NewWriter returns a Writer logging to log.
func NewWriter(log *slog.Logger) *Writer { return &Writer{log: log} }

// Write logs p (one log.Logger output, possibly several lines) and never
// fails, as log.Logger expects.
func (w *Writer) Write(p []byte) (int, error) {
	pc, pkg := caller()
	msg := string(bytes.TrimRight(p, "\n"))
	level := Classify(pkg, msg)
	ctx := context.Background()
	if !w.log.Enabled(ctx, level) {
		return len(p), nil
	}
	r := slog.NewRecord(time.Now(), level, msg, pc)
	r.AddAttrs(slog.String("component", Component), slog.String("package", pkg))
	_ = w.log.Handler().Handle(ctx, r)
	return len(p), nil
}

// Classify picks the level of a line from the log package: Warn when it
// reports an error or a failure, Debug for a dependency's chatter, Info
// for Weir's own packages (and for a caller that cannot be told).
func Classify(pkg, msg string) slog.Level {
	lower := strings.ToLower(msg)
	for _, w := range []string{"error", "fail", "panic", "fatal"} {
		if strings.Contains(lower, w) {
			return slog.LevelWarn
		}
	}
	if pkg == "" || strings.HasPrefix(pkg, modulePrefix) && !strings.HasPrefix(pkg, thirdPartyPrefix) {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// caller finds the first frame above Writer.Write outside the log
// package: the code that printed. It returns its pc (for AddSource) and
// package path.
func caller() (uintptr, string) {
	var pcs [16]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if pkg := packageOf(f.Function); pkg != "log" && pkg != "" && !ownFrame(f.Function) {
			return f.PC, pkg
		}
		if !more {
			return 0, ""
		}
	}
}

// ownFrame reports the capture's own writers, which sit between the log
// package and runtime.Callers.
func ownFrame(fn string) bool {
	rest, ok := strings.CutPrefix(fn, "github.com/weir-edge/weir/internal/logcapture.")
	return ok && (strings.HasPrefix(rest, "(*Writer)") || strings.HasPrefix(rest, "stdWriter") || rest == "caller")
}

// packageOf extracts the import path from a function name such as
// "github.com/gopcua/opcua/server.(*Server).Start" or "log.Printf".
func packageOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return fn
	}
	return fn[:slash+1+dot]
}
