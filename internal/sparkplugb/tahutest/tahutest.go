// Package tahutest runs Eclipse Tahu's JavaScript Sparkplug library (npm
// sparkplug-payload, installed in sinks/sparkplug/testdata/npm by its
// install.sh, which scripts/test-peers.sh runs) for the tests that hold
// Weir's Sparkplug encoding and decoding against an implementation nobody
// here wrote. Only tests import it.
package tahutest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Dir is the npm project with the scripts: decode.js (base64 payload in,
// JSON out) and encode.js (JSON description in, base64 payload out), one
// per line.
func Dir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("tahutest: cannot locate the repository")
	}
	// file is <repo>/internal/sparkplugb/tahutest/tahutest.go.
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "sinks", "sparkplug", "testdata", "npm")
}

// Run feeds lines to script (decode.js or encode.js) and returns its output
// lines, one per input line. It skips the test when node or the npm
// package is missing, unless WEIR_REQUIRE_PEERS=1 makes that a failure.
func Run(t testing.TB, script string, lines []string) []string {
	t.Helper()
	dir := Dir(t)
	node, err := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "sparkplug-payload"))
	if err != nil || modErr != nil {
		msg := "node or sinks/sparkplug/testdata/npm/node_modules missing (run its install.sh)"
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var in bytes.Buffer
	for _, l := range lines {
		in.WriteString(l)
		in.WriteByte('\n')
	}
	cmd := exec.Command(node, script)
	cmd.Dir = dir
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	res := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(res) != len(lines) {
		t.Fatalf("%s: %d lines for %d inputs:\n%s", script, len(res), len(lines), out)
	}
	return res
}
