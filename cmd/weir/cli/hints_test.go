package cli

import (
	"strings"
	"testing"
)

// What a user types wrong on the command line gets the fix, not Go's
// parser error, and -h says what a command checks.
func TestCommandLineHints(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{[]string{"browse", "127.0.0.1:4840"}, 1, "", "did you mean opc.tcp://127.0.0.1:4840?"},
		{[]string{"browse", "http://plc:4840"}, 1, "", "did you mean opc.tcp://plc:4840?"},
		{[]string{"validate", "-h"}, 0, "Exit status: 0 when every file is valid", ""},
		{[]string{"run", "-seed", "5", "gateway.yaml"}, 2, "", "for the demo only"},
		{[]string{"run", "gateway.yaml", "--sim-listen", "127.0.0.1:0"}, 2, "", "for the demo only"},
		{[]string{"alarms", "list", "-api", "http://127.0.0.1:1"}, 1, "", "no gateway answers at 127.0.0.1:1"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.inStdout) || !strings.Contains(errOut, tc.inStderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
		})
	}
}
