//go:build linux

package packaging

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-edge/weir/cmd/weir/cli"
)

// The test binary doubles as weir for TestRunsSandboxed: with sandboxEnv
// set it applies what it names, then runs the weir CLI on sandboxArgs.
const (
	sandboxEnv  = "WEIR_PACKAGING_SANDBOX"
	sandboxArgs = "WEIR_PACKAGING_ARGS"
	// prctl options (linux/prctl.h, Linux 6.3+): the kernel mechanism
	// behind the unit's MemoryDenyWriteExecute=yes in systemd 253+
	// (older ones use an equivalent seccomp filter).
	prSetMDWE            = 0x41
	prGetMDWE            = 0x42
	prMDWERefuseExecGain = 0x1
	exitMDWEUnsupported  = 77
	exitMDWENotInEffect  = 78
	exitReexecFailed     = 79
)

func TestMain(m *testing.M) {
	switch os.Getenv(sandboxEnv) {
	case "mdwe":
		// Refuse writable-executable memory from here on, for this
		// process and what it executes, then execute weir afresh so
		// that the Go runtime starts under the rule, as under systemd.
		if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetMDWE, prMDWERefuseExecGain, 0, 0, 0, 0); e != 0 {
			fmt.Fprintln(os.Stderr, "prctl(PR_SET_MDWE):", e)
			os.Exit(exitMDWEUnsupported)
		}
		os.Setenv(sandboxEnv, "run")
		err := syscall.Exec(os.Args[0], os.Args, os.Environ())
		fmt.Fprintln(os.Stderr, "re-exec:", err)
		os.Exit(exitReexecFailed)
	case "plain":
		os.Exit(cli.Main(strings.Split(os.Getenv(sandboxArgs), "\n"), os.Stdout, os.Stderr))
	case "run":
		if r, _, _ := syscall.RawSyscall6(syscall.SYS_PRCTL, prGetMDWE, 0, 0, 0, 0, 0); r&prMDWERefuseExecGain == 0 {
			fmt.Fprintln(os.Stderr, "MemoryDenyWriteExecute is not in effect")
			os.Exit(exitMDWENotInEffect)
		}
		// And it bites: writable, executable memory is refused.
		if b, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC, syscall.MAP_ANON|syscall.MAP_PRIVATE); err == nil {
			syscall.Munmap(b)
			fmt.Fprintln(os.Stderr, "a writable, executable mapping was allowed")
			os.Exit(exitMDWENotInEffect)
		}
		os.Exit(cli.Main(strings.Split(os.Getenv(sandboxArgs), "\n"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// nobody is the unprivileged user the sandboxed gateway runs as.
const nobody = 65534

// TestRunsSandboxed runs the demo gateway (simulated plant, broker, write
// gate, audit trail, HTTP API) under the unit's user-space restrictions
// that can be applied without systemd: an unprivileged user, no
// capabilities in any set, no_new_privs, and writable-executable memory
// refused (MemoryDenyWriteExecute). It must start, serve, and stop cleanly
// on SIGTERM. What needs systemd itself (the system-call filter, the mount
// namespaces) is covered by TestUnitExposure and TestUnitVerify only.
func TestRunsSandboxed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot switch to an unprivileged user to run the gateway sandboxed")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	// A copy of this binary and a data dir that the user nobody can reach.
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "weir")
	copyFile(t, self, bin, 0o755)
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, nobody, nobody); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, setpriv, "--reuid", fmt.Sprint(nobody), "--regid", fmt.Sprint(nobody), "--clear-groups",
		"--no-new-privs", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--", bin, "-test.run=^$")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + data, "XDG_CACHE_HOME=" + data, sandboxEnv + "=mdwe",
		sandboxArgs + "=" + strings.Join([]string{"run", "--data-dir", data, "--http-listen", "127.0.0.1:0",
			"--broker-listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0", "--log-level", "warn"}, "\n")}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Running: it wrote its API address.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ready := false; !ready; {
		select {
		case err := <-done:
			if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == exitMDWEUnsupported {
				t.Skipf("this kernel has no PR_SET_MDWE: %s", stderr.String())
			}
			t.Fatalf("the sandboxed gateway ended before it served: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("the sandboxed gateway never wrote api.url\n%s", stderr.String())
		case <-tick.C:
			_, err := os.Stat(filepath.Join(data, "api.url"))
			ready = err == nil
		}
	}
	status := procStatus(t, cmd.Process.Pid)
	for key, want := range map[string]string{"Uid": "65534", "CapEff": "0000000000000000", "CapPrm": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1"} {
		if got := status[key]; !strings.HasPrefix(got, want) {
			t.Errorf("/proc/PID/status %s: %q, want %s", key, got, want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the sandboxed gateway did not stop cleanly on SIGTERM: %v\n%s", err, stderr.String())
	}
	for _, bad := range []string{"panic", "fatal error", "permission denied", "operation not permitted"} {
		if strings.Contains(strings.ToLower(stderr.String()), bad) {
			t.Errorf("the sandboxed gateway logged %q:\n%s", bad, stderr.String())
		}
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(to, mode); err != nil {
		t.Fatal(err)
	}
}

// procStatus reads /proc/PID/status into key → value.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}
