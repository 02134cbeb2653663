package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/flows"
)

// writeDataFlows prints validate's "Data flows" section from
// config.FlowReport: the classification, then per sink its max_class,
// its route, the classes of the known tags it will receive and those its
// class holds back whatever the route says, then the warnings where a
// route asks for more than its sink may take (validation reports them at
// file:line too). It reads only the configuration: tags are counted as
// they leave the shared chain, where routes classify them; MQTT sources'
// tags are known at run time, are not counted, and it says so.
func writeDataFlows(w io.Writer, rep config.DataFlow) {
	fmt.Fprintln(w, "Data flows:")
	var rules []string
	for _, r := range rep.Rules {
		rules = append(rules, r.Class+" "+strings.Join(r.Match, ", "))
	}
	cls := "default " + rep.DefaultClass
	if len(rules) > 0 {
		cls += "; " + strings.Join(rules, "; ")
	}
	fmt.Fprintf(w, "  classification: %s\n", cls)
	if len(rep.Carried) > 0 {
		var carried []string
		for _, r := range rep.Carried {
			carried = append(carried, r.Class+" "+strings.Join(r.Match, ", "))
		}
		fmt.Fprintf(w, "  carried through the shared chain: %s\n", strings.Join(carried, "; "))
	}
	fmt.Fprintf(w, "  known tags: %d%s, as they leave the shared chain\n", rep.KnownTags, parenCounts(rep.Classes))
	none := "no known tag"
	for _, src := range rep.RuntimeSources {
		fmt.Fprintf(w, "  tags of source %s are known only at run time; routes to them are enforced at run time\n", src)
	}
	if len(rep.RuntimeSources) > 0 {
		none += " (tags of source " + strings.Join(rep.RuntimeSources, ", ") + " are known only at run time)"
	}
	for _, s := range rep.Sinks {
		kind := ""
		if s.Kind != "" {
			kind = " (" + s.Kind + ")"
		}
		fmt.Fprintf(w, "  sink %s%s, max_class %s\n", s.Name, kind, s.MaxClass)
		fmt.Fprintf(w, "    route:     %s\n", flows.RouteText(flows.Route{Include: s.Include, Exclude: s.Exclude, Quality: s.Quality, Processors: s.Processors}))
		fmt.Fprintf(w, "    receives:  %s\n", classCounts(s.Receives, none))
		if len(s.Denied) > 0 {
			fmt.Fprintf(w, "    held back: %s (above max_class %s: counted and reported, never sent)\n", classCounts(s.Denied, ""), s.MaxClass)
		}
	}
	for _, wn := range rep.Warnings {
		fmt.Fprintf(w, "  warning: %s: %s\n", wn.Key, wn.Msg)
	}
}

// classCounts is "public 2 tags, internal 1 tag"; none when empty.
func classCounts(cs []config.ClassCount, none string) string {
	if len(cs) == 0 {
		return none
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %d tag%s", c.Class, c.Tags, plural(c.Tags)))
	}
	return strings.Join(parts, ", ")
}

func parenCounts(cs []config.ClassCount) string {
	if len(cs) == 0 {
		return ""
	}
	return " (" + classCounts(cs, "") + ")"
}
