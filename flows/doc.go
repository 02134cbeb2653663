// Package flows makes the data flow of a running gateway observable: a
// map of source → shared chain → route → sink, each with totals and rates
// per second, so that an operator or a security team sees what leaves the
// site, where to, and how much.
//
// The map has two halves. The topology (kinds, each sink's max_class and
// route, the shared chain's processor names) comes from the running
// configuration through Options.Topology and changes only with a reload.
// The numbers come from engine.Status: the engine's Emitted and Filtered
// for the shared chain, each source's "samples", and each sink's route_*
// counters (package route, added by the engine), samples_written,
// wire_bytes (the sink's own) and its buffer.
//
// Rates are computed one bounded way: a Sampler keeps a ring of Window
// snapshots of the counters it needs (one per Interval, taken by the one
// goroutine Run, which the gateway runs and which stops with its ctx);
// Map divides the difference between the live counters and the oldest
// snapshot by the time between them — about ten seconds once the ring is
// full. Before the first snapshot, rates are 0 and WindowSeconds is 0. A
// counter that went down (a sink replaced by a reload starts from 0)
// counts its new total as the difference, never a negative rate.
//
// Caveats: a component the topology does not know (between a reload and
// the next Topology call) is shown with an empty kind; a sink without a
// route block reports no route_* counters and shows zeros for them.
package flows
