package durable

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestPebbleLoggerLevels: Pebble's background errors (reported through
// Infof by its default event listener) are warnings, its notes debug.
func TestPebbleLoggerLevels(t *testing.T) {
	var b bytes.Buffer
	l := pebbleLogger{slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Infof("background error: %s", "disk full")
	l.Infof("[JOB 1] WAL created")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[1], "level=DEBUG") {
		t.Fatalf("log:\n%s", b.String())
	}
}
