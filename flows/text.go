package flows

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// WriteText prints the map for a terminal (weir flows): the sources, the
// shared chain, then one line per sink with its class and its rates —
// samples/s in → sent, bytes/s in → out of its route, bytes/s on the
// wire — and its route (long lists shortened, see RouteShort); then each
// sink's totals (in, filtered, held back by classification, chain in and
// out, written, dropped, bytes), and a note for a component that
// restarted within the window.
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
	fmt.Fprintln(tw, "SINK\tKIND\tSTATE\tMAX CLASS\tIN/S → SENT/S\tBYTES IN/S → OUT/S\tWIRE\tBUFFER\tROUTE")
	for _, s := range m.Sinks {
		in, bytes := "-", "-"
		if s.Routed {
			in = rate(s.In.PerSecond)
			bytes = byteRate(s.InBytes.PerSecond) + " → " + byteRate(s.OutBytes.PerSecond)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s → %s\t%s\t%s\t%d\t%s\n", s.Name, dash(s.Kind), dash(s.State), s.MaxClass,
			in, rate(s.Written.PerSecond), bytes, byteRate(s.WireBytes.PerSecond), s.BufferDepth, RouteShort(s.Route))
	}
	if len(m.Sinks) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t\t\t\t\t\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(m.Sinks) == 0 {
		return nil
	}
	// The totals, so that in = filtered + denied + chain in can be
	// checked by eye (the counters are read one by one while samples
	// flow: a batch in flight can put them a batch apart).
	fmt.Fprintln(w, "\ntotals since each sink started: IN = FILTERED + DENIED + CHAIN IN; CHAIN OUT entered the buffer")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tIN\tFILTERED\tDENIED\tCHAIN IN\tCHAIN OUT\tWRITTEN\tDROPPED\tBYTES IN\tBYTES OUT\tWIRE")
	for _, s := range m.Sinks {
		if !s.Routed {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%d\t%d\t-\t-\t%s\n", s.Name, s.Written.Total, s.Dropped.Total, ByteSize(float64(s.WireBytes.Total)))
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.In.Total, total(s.Filtered, true), total(s.Denied, true),
			s.ChainIn.Total, s.ChainOut.Total, s.Written.Total, s.Dropped.Total,
			ByteSize(float64(s.InBytes.Total)), ByteSize(float64(s.OutBytes.Total)), ByteSize(float64(s.WireBytes.Total)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range m.Sinks {
		if !s.RestartedAfter.IsZero() {
			ago := m.At.Sub(s.RestartedAfter).Seconds()
			fmt.Fprintf(w, "note: sink %s restarted less than %.0f s ago (a reload replaced or added it): its totals count from then, its rates are over the last %.1f s\n",
				s.Name, math.Ceil(ago), s.RateSeconds)
		}
	}
	for _, s := range m.Sources {
		if !s.RestartedAfter.IsZero() {
			ago := m.At.Sub(s.RestartedAfter).Seconds()
			fmt.Fprintf(w, "note: source %s restarted less than %.0f s ago: its total counts from then, its rate is over the last %.1f s\n",
				s.Name, math.Ceil(ago), s.RateSeconds)
		}
	}
	return nil
}

// maxListed is how many patterns or processors RouteShort names before
// "…+N": the full lists are in weir flows -json and weir validate.
const maxListed = 2

// RouteShort is RouteText with each list cut to its first maxListed
// items and "…+N more" ("exclude a/#, b/# …+2 more"), so that a route
// with a long exclude list keeps weir flows' table readable.
func RouteShort(r Route) string {
	return routeText(r, maxListed)
}

// RouteText is a route on one line: "include a/#, b/+ exclude a/x/#
// quality good; processors deadband, window" — "every tag" when it
// selects all.
func RouteText(r Route) string {
	return routeText(r, 0)
}

// routeText writes r, each list cut to its first limit items (0: all).
func routeText(r Route, limit int) string {
	var parts []string
	if len(r.Include) > 0 {
		parts = append(parts, "include "+list(r.Include, ", ", limit))
	} else {
		parts = append(parts, "every tag")
	}
	if len(r.Exclude) > 0 {
		parts = append(parts, "exclude "+list(r.Exclude, ", ", limit))
	}
	if r.Quality != "" && r.Quality != "any" {
		parts = append(parts, "quality "+r.Quality)
	}
	s := strings.Join(parts, " ")
	if len(r.Processors) > 0 {
		s += "; processors " + list(r.Processors, " → ", limit)
	}
	return s
}

// list joins items, the first limit of them (0: all) and "…+N more".
func list(items []string, sep string, limit int) string {
	if limit <= 0 || len(items) <= limit+1 {
		return strings.Join(items, sep)
	}
	return fmt.Sprintf("%s …+%d more", strings.Join(items[:limit], sep), len(items)-limit)
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
