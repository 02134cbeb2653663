package soak_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/cmd/weir/cli"
	"github.com/weir-edge/weir/internal/soak"
)

// TestMain lets this test binary be the soaked gateway: with
// WEIR_SOAK_CHILD set it runs `weir` on its arguments.
func TestMain(m *testing.M) {
	if os.Getenv("WEIR_SOAK_CHILD") == "1" {
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func selfCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WEIR_SOAK_CHILD=1")
	return cmd
}

// A short soak of the real gateway: it is killed twice while the broker
// and the network fail at random, then drains; nothing accepted is lost.
func TestSoakKillsAndDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns gateways")
	}
	o := soak.Options{Kills: 2, Seed: 42, MinRun: 300 * time.Millisecond, MaxRun: 800 * time.Millisecond,
		Faults: []string{soak.FaultKill, soak.FaultBroker, soak.FaultNet}, Command: selfCommand, Dir: t.TempDir()}
	rep, err := soak.Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	soak.WriteReport(&out, rep)
	t.Log(out.String())
	if rep.Counts.Kills != 2 || rep.Counts.Runs != 3 || rep.Counts.Graceful != 1 {
		t.Errorf("counts %+v: want 2 kills and 3 runs, the last one stopped gracefully", rep.Counts)
	}
	if why := rep.Result.Failed(); why != "" {
		t.Errorf("soak failed: %s", why)
	}
	if rep.Result.Delivered == 0 || !strings.Contains(out.String(), "PASS") {
		t.Errorf("nothing delivered, or no verdict:\n%s", out.String())
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := soak.Options{Duration: time.Second, MinRun: time.Millisecond, MaxRun: time.Millisecond,
		Faults: soak.AllFaults, Command: selfCommand}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	tests := []struct {
		name string
		edit func(*soak.Options)
		want string
	}{
		{"no end", func(o *soak.Options) { o.Duration = 0 }, "duration or a number of kills"},
		{"bad bounds", func(o *soak.Options) { o.MinRun = 2 * time.Second }, "need 0 < min <= max"},
		{"unknown fault", func(o *soak.Options) { o.Faults = []string{"meteor"} }, `fault "meteor"`},
		{"kills without kill", func(o *soak.Options) { o.Kills, o.Faults = 3, []string{soak.FaultNet} }, "needs the kill fault"},
		{"no command", func(o *soak.Options) { o.Command = nil }, "no gateway command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
