package flows

import (
	"sort"
	"time"
)

// Topology is the static part of the map: what the configuration says.
// The order of Sources and Sinks is the order the map lists them in.
type Topology struct {
	Sources []SourceInfo
	// Chain names the shared chain's processors in order, the gateway's
	// own stages (rules, alarms, …) included.
	Chain []string
	Sinks []SinkInfo
}

// SourceInfo describes one configured source.
type SourceInfo struct {
	Name, Kind string
}

// SinkInfo describes one configured sink and its route.
type SinkInfo struct {
	Name, Kind string
	// MaxClass is the highest class the sink may receive, as a name
	// (default internal).
	MaxClass string
	Route    Route
}

// Route is a sink's route as configured: an empty Include selects every
// tag; Processors name the sink's own chain in order.
type Route struct {
	Include    []string `json:"include,omitempty"`
	Exclude    []string `json:"exclude,omitempty"`
	Quality    string   `json:"quality"`
	Processors []string `json:"processors,omitempty"`
}

// Count is a counter's total since its component started and its rate
// over the map's window — or, for a component that restarted within the
// window, over the time since (its RateSeconds).
type Count struct {
	Total     uint64  `json:"total"`
	PerSecond float64 `json:"per_second"`
}

// Map is the data-flow map of GET /api/v1/flows, weir flows and the UI's
// Flows page.
type Map struct {
	Node string    `json:"node,omitempty"`
	At   time.Time `json:"at"`
	// WindowSeconds is the time the rates are measured over; 0: no
	// snapshot yet, every rate is 0.
	WindowSeconds float64  `json:"window_seconds"`
	Sources       []Source `json:"sources"`
	Chain         Chain    `json:"chain"`
	Sinks         []Sink   `json:"sinks"`
}

// Source is one source on the map.
type Source struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	State   string `json:"state"`
	Up      bool   `json:"up"`
	Samples Count  `json:"samples"`
	Restart
}

// Restart says over how long a component's rates are measured, and
// whether it restarted (a reload replaced it) within the map's window:
// its counters then started again from 0, and a rate over the whole
// window would understate it, so its rates are over the time since.
type Restart struct {
	// RateSeconds is the time this component's rates are measured over:
	// WindowSeconds, or less after a restart; 0: no rates yet.
	RateSeconds float64 `json:"rate_seconds"`
	// RestartedAfter, when set, is the last snapshot before the component
	// restarted (or appeared): it restarted between then and the next.
	RestartedAfter time.Time `json:"restarted_after,omitzero"`
}

// Chain is the shared processor chain: it runs once for every sample,
// and rules and alarms see all of its output. In counts what entered it
// (sources' samples and what time-driven processors emitted), Filtered
// what it removed, Out what every route was offered.
type Chain struct {
	Processors []string `json:"processors"`
	In         Count    `json:"in_samples"`
	Filtered   Count    `json:"filtered_samples"`
	Out        Count    `json:"out_samples"`
}

// Sink is one sink on the map with its route's counters. After a drain:
// In = Filtered + Denied + ChainIn; ChainOut
// entered the buffer and leaves it as Written, Dropped or BufferDepth.
type Sink struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Up       bool   `json:"up"`
	MaxClass string `json:"max_class"`
	Route    Route  `json:"route"`
	// Routed says the engine runs a route for the sink (its route_*
	// counters exist).
	Routed   bool  `json:"routed"`
	In       Count `json:"in_samples"`
	Filtered Count `json:"filtered_samples"`
	Denied   Count `json:"denied_samples"`
	// ChainIn entered the sink's own chain: In = Filtered + Denied +
	// ChainIn, checkable from the map alone.
	ChainIn  Count `json:"chain_in_samples"`
	ChainOut Count `json:"chain_out_samples"`
	InBytes  Count `json:"in_bytes"`
	OutBytes Count `json:"out_bytes"`
	Written  Count `json:"samples_written"`
	// WireBytes is what the sink put on the wire to its destination.
	WireBytes   Count `json:"wire_bytes"`
	Dropped     Count `json:"dropped_samples"`
	BufferDepth int   `json:"buffer_depth"`
	Restart
}

// The engine's status counter keys the map reads.
const (
	keySamples       = "samples"
	keyRouteIn       = "route_in_samples"
	keyRouteFiltered = "route_filtered_samples"
	keyRouteDenied   = "route_denied_samples"
	keyRouteChainIn  = "route_chain_in_samples"
	keyRouteChainOut = "route_chain_out_samples"
	keyRouteInBytes  = "route_in_bytes"
	keyRouteOutBytes = "route_out_bytes"
	keyWritten       = "samples_written"
	keyWireBytes     = "wire_bytes"
	keyDropped       = "buffer_dropped" // from the buffer's stats, not a counter
)

// sinkKeys are the counters kept per sink in a snapshot.
var sinkKeys = []string{keyRouteIn, keyRouteFiltered, keyRouteDenied, keyRouteChainIn, keyRouteChainOut, keyRouteInBytes, keyRouteOutBytes,
	keyWritten, keyWireBytes, keyDropped}

// orderBy sorts names known to the topology first, in its order; the rest
// by name.
func orderBy[T any](items []T, name func(T) string, known map[string]int) {
	sort.SliceStable(items, func(i, j int) bool {
		a, aok := known[name(items[i])]
		b, bok := known[name(items[j])]
		switch {
		case aok && bok:
			return a < b
		case aok != bok:
			return aok
		}
		return name(items[i]) < name(items[j])
	})
}
