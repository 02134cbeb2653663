//go:build linux

package packaging

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSyscallsAllowed runs the demo gateway under strace and checks that
// every system call it makes is one the unit's filter lets through
// (SystemCallFilter=@system-service, then ~@privileged @resources), as
// systemd-analyze syscall-filter lists the groups. A call outside would
// fail with EPERM under the unit (SystemCallErrorNumber=EPERM), somewhere
// no test without systemd would see.
func TestSyscallsAllowed(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not tracing the gateway")
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed: the system calls the gateway makes are not checked against the unit's filter")
	}
	allow := syscallGroup(t, "@system-service")
	deny := syscallGroup(t, "@privileged")
	for c := range syscallGroup(t, "@resources") {
		deny[c] = true
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data, trace := filepath.Join(dir, "data"), filepath.Join(dir, "strace.txt")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, strace, "-f", "-qq", "-c", "-o", trace, "--", self, "-test.run=^$")
	cmd.Env = append(os.Environ(), sandboxEnv+"=plain", sandboxArgs+"="+strings.Join([]string{"run", "--data-dir", data,
		"--http-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0", "--log-level", "warn"}, "\n"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ready := false; !ready; {
		select {
		case err := <-done:
			t.Fatalf("the traced gateway ended before it served: %v", err)
		case <-ctx.Done():
			t.Fatal("the traced gateway never wrote api.url")
		case <-tick.C:
			_, err := os.Stat(filepath.Join(data, "api.url"))
			ready = err == nil
		}
	}
	// Stop the gateway (strace's child) as systemd would; strace then
	// writes its summary and exits.
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil || len(strings.Fields(string(kids))) != 1 {
		t.Fatalf("the traced gateway's pid: %q, %v", kids, err)
	}
	var pid int
	fmt.Sscan(string(kids), &pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the traced gateway did not stop cleanly: %v", err)
	}

	used := straceSummary(t, trace)
	var refused []string
	for _, c := range used {
		if c == "fchown" && os.Geteuid() == 0 {
			// SQLite (the historian), running as root, gives a new
			// WAL or journal its database's owner; it never does as
			// the unit's User=weir, and it ignores the result anyway.
			continue
		}
		if !allow[c] || deny[c] {
			refused = append(refused, c)
		}
	}
	t.Logf("%d distinct system calls, all allowed by the unit's filter: %v", len(used), len(refused) == 0)
	if len(refused) > 0 {
		t.Errorf("the gateway makes system calls the unit refuses with EPERM: %v", refused)
	}
}

// syscallGroup expands a systemd system-call group into its calls.
func syscallGroup(t *testing.T, group string) map[string]bool {
	t.Helper()
	out, err := analyze(t, "syscall-filter", "--no-pager", group)
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter %s: %v\n%s", group, err, out)
	}
	calls := map[string]bool{}
	for _, l := range strings.Split(out, "\n")[1:] {
		l = strings.TrimSpace(l)
		switch {
		case l == "", strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "@"):
			for c := range syscallGroup(t, l) {
				calls[c] = true
			}
		default:
			calls[l] = true
		}
	}
	if len(calls) == 0 {
		t.Fatalf("systemd-analyze lists no calls in %s:\n%s", group, out)
	}
	return calls
}

// straceSummary reads the call names from strace -c's table.
func straceSummary(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || strings.HasPrefix(fields[0], "%") || strings.HasPrefix(fields[0], "-") || fields[len(fields)-1] == "total" {
			continue
		}
		calls = append(calls, fields[len(fields)-1])
	}
	if len(calls) == 0 {
		t.Fatalf("no system calls in the strace summary %s", path)
	}
	sort.Strings(calls)
	return calls
}
