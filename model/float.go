package model

import (
	"math"
	"strconv"
	"unsafe"
)

// Float32 builds a float Value from a 32-bit float (a Modbus float32
// register, an OPC UA Float, a Sparkplug float_value) so that it reads as
// the decimal the device meant: 0.82f becomes the float64 nearest 0.82,
// not 0.8199999928474426, which would be encoded as such everywhere
// downstream. Nothing the device sent is lost: converting the result back
// to float32 gives the original bits (checked; the plain widening is the
// fallback should a value ever not round-trip).
func Float32(f float32) Value {
	w := float64(f)
	if math.IsNaN(w) || math.IsInf(w, 0) || w == math.Trunc(w) {
		return Float(w) // integral values and non-finite ones widen exactly
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], w, 'g', -1, 32)
	// The string only lives for the call (strconv copies what it keeps in
	// an error), so it can alias the stack buffer: no allocation per value.
	d, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	if err != nil || float32(d) != f {
		return Float(w)
	}
	return Float(d)
}

// appendJSONFloat appends the shortest decimal that reads back as f, in
// plain notation for 1e-6 ≤ |f| < 1e21 (18000000000.123, not
// 1.8000000000123e+10) and in exponent notation beyond (1e-7, 1e+21), as
// JavaScript and encoding/json print numbers. f must be finite.
func appendJSONFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	if abs == 0 || abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// 1e-07 → 1e-7: drop the exponent's leading zero, as JSON writers do.
	if n := len(dst); n-start >= 4 && dst[n-4] == 'e' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst
}
