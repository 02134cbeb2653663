// Package downsample is Weir's rate limiter per tag: it passes at most one
// sample per tag and epoch-aligned interval, so that a cheap or slow
// destination (a cloud link billed by the byte) gets a tag every 10 s
// while the plant broker gets every change. Its main use is in a sink's
// route (`route: processors:`), where it thins only that sink's stream.
//
// Intervals are cut by SourceTime and aligned to the Unix epoch, like the
// window processor's, so every tag and every gateway cuts at the same
// instants. Two modes:
//
//   - first: the first sample of each interval passes at once, in its
//     place in the batch; the rest of the interval is dropped (counted).
//     No delay, nothing held.
//   - last: the newest sample of the interval (by SourceTime) is held and
//     emitted when the interval ends on the engine's clock (Flush,
//     pipeline.Flusher) or, earlier, when a sample of a later interval
//     arrives. It keeps its own timestamps; it leaves with Seq 0 so the
//     engine numbers it after what it already numbered, which keeps
//     sequence ids increasing per tag.
//
// Bad-quality samples always pass, whatever the interval — a device outage
// is news — and open the interval again, so the first good sample after an
// outage goes on too; drop_bad drops them instead. In last mode a held
// sample goes out before the bad sample that follows it, and every sample
// of a tracked tag that goes on leaves from the end of the batch, so each
// tag's order is kept.
//
// A sample for an interval the tag has already left (an older SourceTime,
// or in last mode an interval already emitted) is dropped and counted as
// late: passing it would put an older value after a newer one.
//
// Memory is bounded: one entry per tag (about 150 bytes with the held
// sample), at most max_tags; samples of further tags pass through,
// counted as untracked. An idle Flush is O(1): it keeps a lower bound on
// the next interval end with a held sample.
//
// Caveats: held samples (last mode, at most one per tag) live in memory
// and are lost when the gateway stops, as open windows are; the first
// sample after a restart passes again. A source clock running ahead holds
// its samples until the engine's clock reaches the interval's end or the
// next interval's sample arrives.
package downsample
