// Package scale is Weir's value-shaping processor: linear scaling
// (value*scale+offset), unit conversion from a small built-in table, a NaN
// policy, clamping with a choice of what out-of-range means, and casting to
// another value kind with explicit rounding and overflow rules.
//
// Rules are tried in order and the first whose `match:` fits a sample's
// path applies; samples no rule matches pass untouched. Scale, offset and
// conversion are folded into one affine map at construction, so the hot
// path is a cached path lookup, one multiply-add and a few comparisons,
// without allocation (except casting to string).
//
// Caveats: scale, offset and convert apply to int, uint and float values
// only (bools, strings and arrays pass those steps unchanged) and always
// produce a float; cast afterwards to get an integer back. A NaN stays NaN
// through the arithmetic and is never "out of range": choose `nan: bad` or
// `nan: drop` to deal with it. Samples without a value (bad quality) pass
// unchanged.
package scale
