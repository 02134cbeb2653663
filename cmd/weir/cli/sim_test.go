package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

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

// weir sim serves the plant over Modbus TCP and, with -opcua-listen, the
// same plant over OPC UA; both stop with the context.
func TestSimServesModbusAndOPCUA(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runNamed(ctx, "sim", []string{"-listen", "127.0.0.1:0", "-opcua-listen", "127.0.0.1:0", "-log-level", "warn"}, &out, &errOut)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "over OPC UA on opc.tcp://127.0.0.1:") {
		select {
		case err := <-done:
			t.Fatalf("sim ended early: %v\n%s\n%s", err, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no OPC UA endpoint announced:\n%s\n%s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the command's output
	}
	if !strings.Contains(out.String(), "(Modbus TCP) on 127.0.0.1:") {
		t.Fatalf("no Modbus address announced:\n%s", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sim: %v", err)
	}
}
