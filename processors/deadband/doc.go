// Package deadband is Weir's report-by-exception processor: it passes a
// tag's sample only when the value moved beyond a deadband (absolute, or a
// percentage of a configured range) or the quality changed, and re-emits
// tags that have been silent too long (the heartbeat), so that consumers
// can tell "unchanged" from "gone".
//
// The comparison is always against the last value passed on, not the last
// one received, so a slow drift eventually passes. Per-tag state is bounded
// by max_tags; tags beyond it pass unfiltered and are counted.
//
// The heartbeat runs on the engine's clock (pipeline.Flusher): a heartbeat
// sample is the newest sample received for the tag, with SourceTime
// unchanged (when the value was really taken) and EdgeTime set to the flush
// time. A tag whose source has stopped keeps heart-beating its last value;
// its unchanging SourceTime shows how old it is. Silence is measured from
// the EdgeTime of the last passed sample, which sources take from the same
// wall clock the engine ticks on.
//
// Caveats: the first rule that matches a path applies. Strings, bools and
// arrays pass on any change whatever the deadband. A NaN passes when it
// appears and when it goes, but a stuck NaN does not repeat (values compare
// by bits).
package deadband
