package cli

import (
	"context"
	"strings"
	"testing"
	"time"
)

// weir sim with the OPC UA server: gopcua's log-package chatter ("New
// Node Set", "doing objects.") comes out as slog records of component
// stdlog at debug level, never as raw lines.
func TestLibraryOutputIsSlog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runNamed(ctx, "sim", []string{"-listen", "127.0.0.1:0", "-opcua-listen", "127.0.0.1:0", "-log-level", "debug"}, &out, &errOut)
	}()
	deadline := time.Now().Add(2 * time.Minute) // building the address space takes seconds on a loaded machine
	for !strings.Contains(out.String(), "over OPC UA on opc.tcp://127.0.0.1:") {
		select {
		case err := <-done:
			t.Fatalf("sim ended early: %v\n%s\n%s", err, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no OPC UA endpoint announced:\n%s\n%s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the command's output
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sim: %v", err)
	}
	for _, msg := range []string{"New Node Set", "doing objects."} {
		found := false
		for _, line := range strings.Split(errOut.String(), "\n") {
			if !strings.Contains(line, msg) {
				continue
			}
			found = true
			if !strings.HasPrefix(line, "time=") || !strings.Contains(line, "level=DEBUG") ||
				!strings.Contains(line, "component=stdlog") || !strings.Contains(line, "package=github.com/weir-edge/weir/internal/third_party/gopcua/server") {
				t.Errorf("not a leveled slog record of gopcua: %q", line)
			}
		}
		if !found {
			t.Errorf("%q not logged at debug:\n%s", msg, errOut.String())
		}
	}
}
