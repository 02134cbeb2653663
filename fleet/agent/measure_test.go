package agent

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Steady overhead of the site agent (WEIR_MEASURE=1): n agents in sync
// with one version, reporting at the default interval to the test hub in
// this process, for a while; the CPU time and heap of the process with
// them less those of the hub alone, per agent. The hub's own work for
// them (acknowledging reports) is counted as theirs, so the figure is an
// upper bound; the gateway is stubbed at the seam (its FleetState cost is
// the gateway's /status, not measured here).
func TestMeasureSteadyOverhead(t *testing.T) {
	if os.Getenv("WEIR_MEASURE") != "1" {
		t.Skip("set WEIR_MEASURE=1 to measure")
	}
	const n = 100
	window := 30 * time.Second
	h := startHub(t)
	idle := measure(window)
	var sites []*site
	for i := range n {
		id := fmt.Sprintf("m%03d", i)
		sites = append(sites, startSite(t, h, id, "", func(o *Options) {
			o.NATS = []nats.Option{nats.UserInfo("hub", "hub")} // the test hub has no user per measured site
			o.ReportInterval = DefaultReportInterval
		}))
	}
	for _, s := range sites {
		h.setDesired(h.issue(s.agent.opts.Site, 1, "v: 1\n"), true)
	}
	for _, s := range sites {
		waitSnapshot(t, s.agent, "version 1", func(r Report) bool { return r.Applied.Version == 1 && r.State == StateInSync })
	}
	busy := measure(window)
	cpu := (busy.cpu - idle.cpu).Seconds() / window.Seconds() / n * 100
	heap := float64(int64(busy.heap)-int64(idle.heap)) / n / (1 << 20)
	t.Logf("%d agents, %s each window: %.3f %% of a core and %.2f MiB heap+stacks per agent (process: idle %.2fs CPU %.1f MiB, with agents %.2fs CPU %.1f MiB)",
		n, window, cpu, heap, idle.cpu.Seconds(), float64(idle.heap)/(1<<20), busy.cpu.Seconds(), float64(busy.heap)/(1<<20))
	if cpu > 1 || heap > 5 {
		t.Errorf("per-agent overhead %.3f %% of a core, %.2f MiB: over the 1 %% / 5 MB target", cpu, heap)
	}
}

type usage struct {
	cpu  time.Duration
	heap uint64
}

// measure returns the CPU time the process used over window and its heap
// and stacks in use at the end (after a GC).
func measure(window time.Duration) usage {
	before := cpuTime()
	time.Sleep(window) // the measurement window itself, not synchronisation
	u := usage{cpu: cpuTime() - before}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u.heap = ms.HeapInuse + ms.StackInuse
	return u
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
