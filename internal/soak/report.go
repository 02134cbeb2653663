package soak

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Counts are the faults injected and the gateway's runs.
type Counts struct {
	Runs, Kills, Graceful, Crashes, StartFailures int
	BrokerRestarts, NetDrops, NetBlackholes       int
	DiskFull, Poison                              int
	Notes                                         []string
	Wall                                          time.Duration
}

// Report is the outcome of a soak.
type Report struct {
	Options Options
	Counts  Counts
	Result  Result
	// Crashed holds the log tails of runs that exited by themselves.
	Crashed []string
}

// WriteReport prints the report as a table.
func WriteReport(w io.Writer, r *Report) {
	c, res := r.Counts, r.Result
	fmt.Fprintf(w, "weir soak: %v wall, seed %d, faults %s\n", c.Wall.Round(time.Second), r.Options.Seed, strings.Join(r.Options.Faults, ","))
	fmt.Fprintf(w, "  gateway runs        %d (restarts %d)\n", c.Runs, max(c.Runs-1, 0))
	fmt.Fprintf(w, "  kills by kind       kill -9 %d, broker %d, network drop %d, network blackhole %d, disk full %d, poison %d\n",
		c.Kills, c.BrokerRestarts, c.NetDrops, c.NetBlackholes, c.DiskFull, c.Poison)
	fmt.Fprintf(w, "  graceful stops      %d; exited by itself %d; failed starts %d\n", c.Graceful, c.Crashes, c.StartFailures)
	fmt.Fprintf(w, "  delivered           %d samples (%d deliveries)\n", res.Delivered, res.Deliveries)
	fmt.Fprintf(w, "  lost                %d\n", res.Lost)
	fmt.Fprintf(w, "  duplicates          %d%s\n", res.DuplicateCount(), perTag(res.Duplicates))
	fmt.Fprintf(w, "  order violations    %d%s\n", res.OrderViolations(), perTag(res.Order))
	fmt.Fprintf(w, "  dead-lettered       %d (gateway's figure); gaps excused by poison %d\n", res.DeadLettered, res.Excused)
	for _, n := range c.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, cr := range r.Crashed {
		fmt.Fprintf(w, "  a run exited by itself: %s\n", firstLines(cr, 12))
	}
	if why := res.Failed(); why != "" {
		fmt.Fprintf(w, "FAIL: %s\n", why)
	} else {
		fmt.Fprintln(w, "PASS: nothing accepted was lost, no tag reordered")
	}
}

func perTag(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" (")
	first := true
	for _, k := range sortedKeys(m) {
		if !first {
			b.WriteString(", ")
		}
		first = false
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	b.WriteString(")")
	return b.String()
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n    ")
}
