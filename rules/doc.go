// Package rules is Weir's rule engine: conditions over tags, written as
// expressions (github.com/expr-lang/expr) over named inputs, and what to do
// when a condition becomes true and, optionally, when it clears — raise an
// alarm (package alarms), append a derived tag or an event sample, write a
// tag through the write gate, or call a web hook.
//
// Expressions are compiled and type-checked once, in Validate (errors name
// the rule and the line:column in the expression) and New.
//
// Processor is a pipeline.Processor and pipeline.Flusher. Process looks up
// each sample's path in an index (path → rules), so only rules whose inputs
// are in the batch are evaluated, each at most once per batch; Flush fires
// rules whose `for` duration elapsed on the engine's clock without a new
// sample. A rule moves idle → waiting (condition true, `for` running) →
// active (actions fired) → idle (condition false, or the hysteresis clear
// condition true; on_clear actions fired).
//
// Time: the wait starts at the SourceTime of the newest input (EdgeTime
// when the source has none) and ends on a later input's SourceTime or on
// the engine clock in Flush, so source and gateway clocks should agree
// (NTP); a device clock far behind the gateway makes Flush fire early.
//
// Bad inputs: a var never seen, a bad-quality sample, a value the declared
// type cannot hold or a non-finite float (NaN, ±Inf) makes the condition
// unknown: a waiting rule goes back to idle (nothing fires), an active rule
// holds (it does not clear on a failed sensor). Uncertain quality is
// evaluated like good. Historical (replayed) samples are ignored.
//
// Rules never wait on a device or a network: Process only decides. Writes
// and HTTP calls go to Runner, a bounded queue served by a fixed pool of
// workers; a full queue drops the action and counts it. Writes carry caller
// "rule:<name>" and IssuedAt = the decision time, so the gate refuses a
// command that waited in the queue longer than its max_age.
package rules
