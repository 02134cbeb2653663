package scale

import "strings"

// unit is one entry of the conversion table: base = value*factor + offset,
// where base is the SI (or customary base) unit of its dimension.
type unit struct {
	dim            string
	factor, offset float64
}

// units is the conversion table. Keys are lower-cased; aliases share
// entries. Keep it small and exact: every factor is a defined constant, not
// a measurement.
var units = map[string]unit{
	// temperature, base K
	"degc": {"temperature", 1, 273.15}, "°c": {"temperature", 1, 273.15}, "celsius": {"temperature", 1, 273.15},
	"degf": {"temperature", 5.0 / 9, 273.15 - 32*5.0/9}, "°f": {"temperature", 5.0 / 9, 273.15 - 32*5.0/9}, "fahrenheit": {"temperature", 5.0 / 9, 273.15 - 32*5.0/9},
	"k": {"temperature", 1, 0}, "kelvin": {"temperature", 1, 0},
	// pressure, base Pa
	"pa": {"pressure", 1, 0}, "hpa": {"pressure", 100, 0}, "kpa": {"pressure", 1e3, 0}, "mpa": {"pressure", 1e6, 0},
	"mbar": {"pressure", 100, 0}, "bar": {"pressure", 1e5, 0},
	"psi": {"pressure", 6894.757293168361, 0}, // lbf/in²
	// volume flow, base m³/s
	"m3/s": {"flow", 1, 0}, "m³/s": {"flow", 1, 0},
	"m3/h": {"flow", 1.0 / 3600, 0}, "m³/h": {"flow", 1.0 / 3600, 0},
	"l/s": {"flow", 1e-3, 0}, "l/min": {"flow", 1e-3 / 60, 0}, "l/h": {"flow", 1e-3 / 3600, 0},
	"gpm": {"flow", 3.785411784e-3 / 60, 0}, // US gallon per minute
	// power, base W
	"w": {"power", 1, 0}, "kw": {"power", 1e3, 0}, "mw": {"power", 1e6, 0},
	"hp": {"power", 745.69987158227022, 0}, // mechanical horsepower
	// energy, base J
	"j": {"energy", 1, 0}, "kj": {"energy", 1e3, 0}, "mj": {"energy", 1e6, 0},
	"wh": {"energy", 3600, 0}, "kwh": {"energy", 3.6e6, 0}, "mwh": {"energy", 3.6e9, 0},
	// length, base m
	"mm": {"length", 1e-3, 0}, "cm": {"length", 1e-2, 0}, "m": {"length", 1, 0}, "km": {"length", 1e3, 0},
	"in": {"length", 0.0254, 0}, "ft": {"length", 0.3048, 0},
	// mass, base kg
	"g": {"mass", 1e-3, 0}, "kg": {"mass", 1, 0}, "t": {"mass", 1e3, 0}, "lb": {"mass", 0.45359237, 0},
	// speed, base m/s
	"m/s": {"speed", 1, 0}, "km/h": {"speed", 1 / 3.6, 0}, "m/min": {"speed", 1.0 / 60, 0},
	// rotation, base 1/s
	"hz": {"frequency", 1, 0}, "rpm": {"frequency", 1.0 / 60, 0}, "1/min": {"frequency", 1.0 / 60, 0},
	// ratio, base 1
	"%": {"ratio", 0.01, 0}, "ratio": {"ratio", 1, 0}, "ppm": {"ratio", 1e-6, 0},
}

func lookupUnit(name string) (unit, bool) {
	u, ok := units[strings.ToLower(strings.TrimSpace(name))]
	return u, ok
}

// conversion returns a, b with to = a*from + b.
func conversion(from, to unit) (a, b float64) {
	// base = v*f1 + o1; out = (base - o2) / f2
	return from.factor / to.factor, (from.offset - to.offset) / to.factor
}
