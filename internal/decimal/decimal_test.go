package decimal

import (
	"math"
	"strconv"
	"testing"
)

func TestPlaces(t *testing.T) {
	for _, tt := range []struct {
		x    float64
		want int
	}{
		{0, 0}, {1200, 0}, {-3, 0}, {0.82, 2}, {-0.82, 2}, {0.01, 2}, {1e-7, 7}, {1.25e-3, 5},
		{123.456, 3}, {1.0 / 3, 16}, {1e-30, -1}, {math.NaN(), -1}, {math.Inf(1), -1}, {1e300, 0},
	} {
		if got := Places(tt.x); got != tt.want {
			t.Errorf("Places(%v) = %d, want %d", tt.x, got, tt.want)
		}
	}
}

// TestAffine: what a user configured as decimals comes out as those
// decimals, encoded shortest (strconv 'g' -1 is what every JSON encoder
// of Weir uses); what is not a short decimal is left to the arithmetic.
func TestAffine(t *testing.T) {
	for _, tt := range []struct {
		name    string
		a, b, x float64
		want    string
	}{
		{"scaled register", 0.01, 0, -82, "-0.82"},
		{"scaled register positive", 0.1, 0, 3, "0.3"},
		{"offset 0.1+0.2", 1, 0.2, 0.1, "0.3"},
		{"scale and offset", 0.01, -40, 6543, "25.43"},
		{"float input scaled", 100, 0, 0.57, "57"},
		{"celsius to fahrenheit", 1.8, 32, 21.5, "70.7"},
		{"integer result", 2, 0, 21, "42"},
		{"large value kept", 0.01, 0, 1e20, plain(0.01, 0, 1e20)},
		{"beyond 14 digits kept", 0.001, 0, 123456789012345678, plain(0.001, 0, 123456789012345678)},
		{"full precision input kept", 2, 0, 0.1234567890123456, plain(2, 0, 0.1234567890123456)},
		{"non-decimal scale kept", 1.0 / 3, 0, 7, plain(1.0/3, 0, 7)},
		{"cancellation", 0.001, -1000000, 1000000123, "0.123"},
		{"NaN passes", 0.01, 0, math.NaN(), "NaN"},
		{"Inf passes", 0.01, 0, math.Inf(-1), "-Inf"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := NewAffine(tt.a, tt.b).Apply(tt.x)
			if s := strconv.FormatFloat(got, 'g', -1, 64); s != tt.want {
				t.Errorf("%v*%v+%v = %s, want %s", tt.a, tt.x, tt.b, s, tt.want)
			}
			// Never further from the plain arithmetic than rounding noise.
			plain := tt.a*tt.x + tt.b
			if !math.IsNaN(plain) && !math.IsInf(plain, 0) && math.Abs(got-plain) > 1e-9*math.Max(1, math.Abs(plain)) {
				t.Errorf("moved %v away from %v", got, plain)
			}
		})
	}
}

// plain is the float64 arithmetic, formatted; variables, so that Go's exact
// constant arithmetic does not stand in for it.
func plain(a, b, x float64) string { return strconv.FormatFloat(a*x+b, 'g', -1, 64) }

func TestApplyDoesNotAllocate(t *testing.T) {
	f := NewAffine(0.01, 0.5)
	if n := testing.AllocsPerRun(100, func() { _ = f.Apply(0.82) }); n != 0 {
		t.Errorf("Apply allocates %v times", n)
	}
}

func TestSnap(t *testing.T) {
	for _, tt := range []struct{ in, mag, want float64 }{
		{1.7999999999999998, 0, 1.8},
		{31.999999999999936, 491.67, 32}, // (273.15 - 255.372…) / (5/9)
		{31.999999999999936, 0, 31.999999999999936},
		{10.000000000000002, 0, 10},
		{0.1, 0, 0.1},
		{1e-300, 0, 1e-300},
		{0, 0, 0},
		{1.0 / 3, 0, 0.333333333333333}, // within 8 ulps: harmless, stays non-decimal (15 places)
		{123.456789, 0, 123.456789},
	} {
		if got := Snap(tt.in, tt.mag); got != tt.want {
			t.Errorf("Snap(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	// Never moves a value by more than 8 units in the last place.
	for _, x := range []float64{math.Pi, math.E, 6894.757293168361 / 1e5, 5.0 / 9, 1.0 / 3600} {
		if d := math.Abs(Snap(x, 0) - x); d > 8*(math.Nextafter(x, 2*x)-x) {
			t.Errorf("Snap(%v) moved it by %v", x, d)
		}
	}
}
