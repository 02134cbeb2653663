package flows

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the map for a terminal (weir flows): the sources, the
// shared chain, then one block per sink with its class, its route and
// what it moved: samples/s in → sent, bytes/s on the wire, what was
// filtered and held back by classification (denied), and its route.
func WriteText(w io.Writer, m Map) error {
	window := "no rates yet (the gateway has taken no snapshot)"
	if m.WindowSeconds > 0 {
		window = fmt.Sprintf("rates over the last %.0f s", m.WindowSeconds)
		if m.WindowSeconds < 9.5 {
			window = fmt.Sprintf("rates over the last %.1f s", m.WindowSeconds)
		}
	}
	node := ""
	if m.Node != "" {
		node = " of " + m.Node
	}
	fmt.Fprintf(w, "Data flows%s at %s, %s\n\n", node, m.At.UTC().Format("2006-01-02 15:04:05Z"), window)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tKIND\tSTATE\tSAMPLES/S\tTOTAL")
	for _, s := range m.Sources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", s.Name, dash(s.Kind), dash(s.State), rate(s.Samples.PerSecond), s.Samples.Total)
	}
	if len(m.Sources) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	chain := strings.Join(m.Chain.Processors, " → ")
	if chain == "" {
		chain = "(none)"
	}
	fmt.Fprintf(w, "\nshared chain: %s\n  in %s/s, filtered %s/s, out %s/s to the routes\n\n",
		chain, rate(m.Chain.In.PerSecond), rate(m.Chain.Filtered.PerSecond), rate(m.Chain.Out.PerSecond))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tKIND\tSTATE\tMAX CLASS\tIN/S → SENT/S\tWIRE\tFILTERED\tDENIED\tBUFFER\tROUTE")
	for _, s := range m.Sinks {
		in := "-"
		if s.Routed {
			in = rate(s.In.PerSecond)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s → %s\t%s\t%s\t%s\t%d\t%s\n", s.Name, dash(s.Kind), dash(s.State), s.MaxClass,
			in, rate(s.Written.PerSecond), byteRate(s.WireBytes.PerSecond), total(s.Filtered, s.Routed), total(s.Denied, s.Routed), s.BufferDepth,
			RouteText(s.Route))
	}
	if len(m.Sinks) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t\t\t\t\t\t\t")
	}
	return tw.Flush()
}

// RouteText is a route on one line: "include a/#, b/+ exclude a/x/#
// quality good; processors deadband, window" — "every tag" when it
// selects all.
func RouteText(r Route) string {
	var parts []string
	if len(r.Include) > 0 {
		parts = append(parts, "include "+strings.Join(r.Include, ", "))
	} else {
		parts = append(parts, "every tag")
	}
	if len(r.Exclude) > 0 {
		parts = append(parts, "exclude "+strings.Join(r.Exclude, ", "))
	}
	if r.Quality != "" && r.Quality != "any" {
		parts = append(parts, "quality "+r.Quality)
	}
	s := strings.Join(parts, " ")
	if len(r.Processors) > 0 {
		s += "; processors " + strings.Join(r.Processors, " → ")
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// total is a counter as "N (R/s)"; "-" when the sink has no route.
func total(c Count, routed bool) string {
	if !routed {
		return "-"
	}
	if c.PerSecond == 0 {
		return fmt.Sprint(c.Total)
	}
	return fmt.Sprintf("%d (%s/s)", c.Total, rate(c.PerSecond))
}

// rate writes a per-second rate with one decimal below 100.
func rate(v float64) string {
	if v >= 100 || v == 0 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// byteRate is bytes/s in B, kB, MB or GB (powers of 1000).
func byteRate(v float64) string {
	return ByteSize(v) + "/s"
}

// ByteSize writes a byte count in B, kB, MB or GB (powers of 1000).
func ByteSize(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1f GB", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1f MB", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f kB", v/1e3)
	}
	return fmt.Sprintf("%.0f B", v)
}
