// Package rate is Weir's per-tag signal processor: rate of change (per
// second or another unit, by SourceTime, with counter rollover), moving
// average over the last N samples, and exponential smoothing (EWMA).
//
// The result either replaces the sample's value (replace: true) or is
// appended to the batch as a derived tag at path + output.path_suffix while
// the input passes unchanged.
//
// Rate uses SourceTime, not arrival time, so batching and network jitter do
// not distort it. A sample not newer than the previous one of its tag
// (out of order, duplicate timestamp) is skipped and counted; smoothing
// skips only older samples. Counters: with rollover set, a decrease is taken
// as a wrap past rollover (delta = rollover − prev + cur + 1), computed in
// integers for int/uint values so large counters stay exact. A device that
// resets its counter also looks like a decrease; it gives one wrong rate
// sample (a wrap) rather than a negative one.
//
// Bad, NaN and non-numeric samples pass unchanged and leave the state as it
// was: the next good sample is compared with the last good one.
package rate
