package cli

import (
	"strings"
	"testing"
)

// weir soak checks its options before it starts anything.
func TestSoakRefusesBadOptions(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"soak", "-faults", "kill,meteor"}, `fault "meteor"`},
		{[]string{"soak", "-duration", "0"}, "set a duration or a number of kills"},
		{[]string{"soak", "-min-run", "2s", "-max-run", "1s"}, "need 0 < min <= max"},
		{[]string{"soak", "-kills", "5", "-faults", "net"}, "needs the kill fault"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			code, _, errOut := run(tt.args...)
			if code != 1 || !strings.Contains(errOut, tt.want) || !strings.HasPrefix(errOut, "weir soak: options: ") {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errOut, tt.want)
			}
		})
	}
}
