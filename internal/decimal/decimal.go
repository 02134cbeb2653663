// Package decimal keeps values users and devices think of as decimals
// decimal through float64 arithmetic. A register scaled by 0.01 is a
// decimal with two places, but -82 * 0.01 in float64 is
// -0.8200000000000001, which every encoder then faithfully prints. Affine
// rounds a*x+b to the decimal places its inputs imply — only when that
// moves the result by far less than one unit in its last place, so a
// value with more digits than float64 can hold exactly is never changed.
package decimal

import (
	"math"
	"strconv"
)

// maxPlaces bounds the decimal places considered; beyond, the inputs are
// not short decimals and the float result stands.
const maxPlaces = 22

// maxScaled bounds |x|·10^places for snapping: below it the exact decimal
// result has at most 14 significant digits, so the float64 arithmetic
// error (a few units in the last place, ~1e-15 relative) is under 0.05
// of the last decimal place and rounding recovers the exact decimal.
const maxScaled = 1e14

var pow10 = func() (p [maxPlaces + 1]float64) {
	for i := range p {
		p[i] = math.Pow10(i)
	}
	return
}()

// Places is the number of decimal places of x's shortest representation
// (0.82 → 2, 1e-7 → 7, 1200 → 0), or -1 when x is not finite or needs
// more than 22 places (1/3, most results of unit conversions).
func Places(x float64) int {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return -1
	}
	if x == math.Trunc(x) {
		return 0
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], x, 'e', -1, 64) // -d.ddde±XX
	digits, exp := 0, 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= '0' && c <= '9' {
			digits++
			continue
		}
		if c == 'e' {
			exp = exponent(b[i+1:])
			break
		}
	}
	p := digits - 1 - exp
	if p < 0 {
		p = 0
	}
	if p > maxPlaces {
		return -1
	}
	return p
}

// exponent parses the "±XX" after the 'e' of strconv's output.
func exponent(b []byte) int {
	neg := len(b) > 0 && b[0] == '-'
	e := 0
	for _, c := range b {
		if c >= '0' && c <= '9' {
			e = e*10 + int(c-'0')
		}
	}
	if neg {
		return -e
	}
	return e
}

// Affine is x ↦ a·x + b with decimal-faithful rounding. Build it once
// with NewAffine; Apply is allocation-free.
type Affine struct {
	a, b   float64
	pa, pb int // places of a and b, -1: not short decimals
}

// NewAffine compiles a·x + b.
func NewAffine(a, b float64) Affine {
	return Affine{a: a, b: b, pa: Places(a), pb: Places(b)}
}

// Apply returns a·x + b; when a, b and x are short decimals it returns
// the float64 nearest the exact decimal result (-82·0.01 → -0.82,
// 0.1+0.2 → 0.3). NaN and ±Inf pass through as the arithmetic gives them.
func (f Affine) Apply(x float64) float64 {
	ax := f.a * x
	r := ax + f.b
	if f.pa < 0 || f.pb < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return r
	}
	px := Places(x)
	if px < 0 {
		return r
	}
	d := max(px+f.pa, f.pb)
	if d == 0 || d > maxPlaces {
		return r // integers in, integer out: nothing to round
	}
	p := pow10[d]
	// The rounding error is relative to the largest term, not to r (a
	// cancellation leaves it in place).
	if max(math.Abs(ax), math.Abs(f.b), math.Abs(r))*p >= maxScaled {
		return r
	}
	return math.Round(r*p) / p
}

// snapULPs is how far Snap may move a constant: the error a few float64
// operations on exact decimal constants accumulate.
const snapULPs = 8

// Snap returns the decimal with the fewest significant digits (at most
// 15) within a few units in the last place of x — or of mag, the largest
// intermediate x was computed from, when a subtraction cancelled — or x
// itself. It is for constants composed from exact decimal definitions: a
// unit conversion °C→°F computed through kelvin gives 1.7999999999999998
// and 31.999999999999936 for 1.8 and 32. Not for measured values.
func Snap(x, mag float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	m := max(math.Abs(x), math.Abs(mag))
	tol := snapULPs * (math.Nextafter(m, math.Inf(1)) - m)
	var buf [32]byte
	for digits := 1; digits <= 15; digits++ {
		b := strconv.AppendFloat(buf[:0], x, 'e', digits-1, 64)
		y, err := strconv.ParseFloat(string(b), 64)
		if err == nil && math.Abs(y-x) <= tol {
			return y
		}
	}
	return x
}
