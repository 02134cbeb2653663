// Package model is Weir's one data representation: a Sample is a typed Value
// for a tag Path at an instant, with a Quality. Every source produces
// Samples, every processor transforms them and every sink encodes them; no
// component invents its own representation.
//
// Values are a small tagged union rather than `any` so that the hot path
// (decode → process → encode) does not allocate per sample: numbers and
// booleans live in a single 64-bit word, strings in a string header, and only
// arrays carry a slice.
//
// Timestamps are Unix nanoseconds (UTC by construction). Ordering and
// de-duplication downstream use sequence ids, never wall time, because edge
// clocks jump.
//
// Tag metadata (unit, description, range) belongs to the tag definition
// (Tag), not to each Sample.
package model
