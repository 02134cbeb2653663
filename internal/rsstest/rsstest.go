// Package rsstest measures a child test process's peak memory, for tests
// that prove hostile input is refused with bounded memory: the parent
// re-runs one test in a child (os.Args[0] -test.run=…), the child reports
// its peak resident set size before and after the input with Report, and
// the parent reads it back with Parse. A child process, because the
// parent's own peak holds whatever the rest of the suite allocated.
package rsstest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// PeakKB is this process's peak resident set size (VmHWM) in kB; the test
// is skipped where /proc does not say.
func PeakKB(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no VmHWM")
	return 0
}

// Report prints the child's line for Parse: its peak before the input
// (measured by the caller) and now.
func Report(t testing.TB, beforeKB int) {
	t.Helper()
	fmt.Printf("VmHWM before %d kB after %d kB\n", beforeKB, PeakKB(t))
}

// Parse finds the child's Report line in its output; ok is false when
// there is none.
func Parse(out string) (beforeKB, afterKB int, ok bool) {
	for _, line := range strings.Split(out, "\n") {
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "VmHWM before %d kB after %d kB", &beforeKB, &afterKB); err == nil {
			return beforeKB, afterKB, true
		}
	}
	return 0, 0, false
}
