package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/weir-edge/weir/engine"
)

// With Options.Routes = 3 the end-to-end run carries three sinks on
// different routes, each its own MQTT client of the same broker and its
// own durable buffer: what issue 14's figures ask to hold. The measured
// sink ("bench": throughput, latency, lost) selects every tag through a
// pattern, so the route's selection is on its path; the other two
// compete for the same CPU, disk and broker:
//
//	bench           include bench/#, all tags, unchanged
//	bench-deadband  a fifth of the devices (include per device, one
//	                excluded back out), deadband 0.5 — the bench values
//	                change on every poll, so nearly all of them pass
//	bench-window    every tag, 1-min tumbling window: mean, min, max

// RouteSinkResult is one sink's route figures over the measured window.
type RouteSinkResult struct {
	Sink  string `json:"sink"`
	Route string `json:"route"`
	// Written: samples the sink confirmed; the rest are the engine's route
	// counters (route_in, route_filtered, route_chain_out), zero when this
	// build has no routes.
	Written  uint64 `json:"samples_written"`
	In       uint64 `json:"route_in"`
	Filtered uint64 `json:"route_filtered"`
	ChainOut uint64 `json:"route_chain_out"`
	// Note says when the measured window cannot show the route's steady
	// state (bench-window with -duration under a minute; WindowNote).
	Note string `json:"note,omitempty"`
}

// routeNames are the three sinks in the order reported, with their routes
// in words.
var routeNames = [][2]string{
	{"bench", "all tags (include bench/#)"},
	{"bench-deadband", "a fifth of the devices, deadband 0.5"},
	{"bench-window", "all tags, 1-min window mean/min/max"},
}

// routesYAML renders the three sinks of a -routes run.
func routesYAML(o Options, broker string) string {
	var b strings.Builder
	id := time.Now().UnixNano() % 1_000_000
	sink := func(name, route string) {
		fmt.Fprintf(&b, `  - name: %s
    batch_size: 1000
    buffer: %s
    mqtt:
      url: tcp://%s
      client_id: weir-%s-%d
      protocol_version: %q
      topic_prefix: weir-bench
      qos: %d
      mode: %s
      max_inflight: 256
    route:
%s`, name, bufferYAML(o.Buffer, o.DrainRate), broker, name, id, o.ProtocolVersion, o.QoS, o.Mode, route)
	}
	b.WriteString("sinks:\n")
	sink("bench", "      include: [\"bench/#\"]\n")
	subset := max(1, o.Devices/5)
	var inc []string
	for i := range subset {
		inc = append(inc, fmt.Sprintf("\"bench/line/dev%03d/#\"", i))
	}
	sink("bench-deadband", fmt.Sprintf("      include: [%s]\n      exclude: [\"bench/line/dev000/r00000\"]\n"+
		"      processors:\n        - name: db\n          deadband: {rules: [{match: [\"#\"], absolute: 0.5}]}\n", strings.Join(inc, ", ")))
	sink("bench-window", "      processors:\n        - name: agg\n          window: {match: [\"#\"], size: 1m, aggregates: [mean, min, max]}\n")
	return b.String()
}

// routeWindow is the window size of the sinks whose route aggregates.
var routeWindow = map[string]time.Duration{"bench-window": time.Minute}

// routeSinkResults reads the three sinks' counters between two statuses
// of a run measured over duration.
func routeSinkResults(st0, st1 engine.Status, duration time.Duration) []RouteSinkResult {
	out := make([]RouteSinkResult, 0, len(routeNames))
	for _, rn := range routeNames {
		k0, k1 := sinkCounters(st0, rn[0]), sinkCounters(st1, rn[0])
		d := func(key string) uint64 { return k1[key] - k0[key] }
		out = append(out, RouteSinkResult{Sink: rn[0], Route: rn[1], Written: d("samples_written"),
			In: d("route_in_samples"), Filtered: d("route_filtered_samples"), ChainOut: d("route_chain_out_samples"),
			Note: WindowNote(routeWindow[rn[0]], duration)})
	}
	return out
}
