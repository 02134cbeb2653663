// Package window is Weir's windowed-aggregation processor: per tag, it cuts
// the samples into tumbling or sliding windows by event time (SourceTime)
// and emits min, max, mean, sum, count, stddev, first, last and percentiles
// when a window closes.
//
// Windows are aligned to the Unix epoch. A window [start, end) closes when
// the engine's clock passes end + allowed_lateness; the aggregates are
// emitted from Flush (pipeline.Flusher) with SourceTime = end and EdgeTime
// = the flush time, under the path "<tag>/<aggregate>_<label>". Driving the
// close by the engine's clock, not by the arrival of newer samples, means a
// tag that goes quiet still gets its last window.
//
// Sliding windows are stored as panes (slide-long slices) merged when a
// window closes, so a sample is added once whatever the overlap. Mean and
// stddev merge with Chan's parallel algorithm; percentiles sort the values
// kept for the window (exact up to max_samples per window, a uniform
// reservoir sample beyond it).
//
// Memory per tag is bounded: at most (size/slide + (allowed_lateness +
// update_horizon)/slide + 64) panes, each ~120 bytes plus, when a
// percentile is requested, up to max_samples/(size/slide) float64 values.
// Tags beyond max_tags pass through raw. Tag state is kept for the life of
// the processor, so that late samples are recognised as late.
//
// Caveats: bad-quality samples, NaN and non-numeric values are not
// aggregated (bools count as 0/1); with pass_through off they are swallowed
// like the rest. A source whose clock runs ahead opens future panes (up to
// 64) that only close when the engine's clock gets there.
package window
