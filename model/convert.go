package model

import "math"

// ToGo converts v to the Go value of a declared expression type: "float"
// (float64), "int" (int64), "uint" (uint64), "bool" or "string". ok is
// false when v does not fit without loss (a fraction into an int, a
// negative into a uint, a NaN into a bool). Expression engines (derived
// tags, rules) use it to build their environments.
func ToGo(v Value, typ string) (any, bool) {
	switch typ {
	case "float":
		f, ok := v.Float64()
		return f, ok
	case "int":
		switch v.Kind() {
		case KindInt:
			return v.AsInt(), true
		case KindUint:
			return int64(v.AsUint()), v.AsUint() <= math.MaxInt64
		case KindBool:
			return boolTo[int64](v.AsBool()), true
		case KindFloat:
			f := v.AsFloat()
			return int64(f), f == math.Trunc(f) && f >= -9223372036854775808.0 && f < 9223372036854775808.0
		}
	case "uint":
		switch v.Kind() {
		case KindUint:
			return v.AsUint(), true
		case KindInt:
			return uint64(v.AsInt()), v.AsInt() >= 0
		case KindBool:
			return boolTo[uint64](v.AsBool()), true
		case KindFloat:
			f := v.AsFloat()
			return uint64(f), f == math.Trunc(f) && f >= 0 && f < 18446744073709551616.0
		}
	case "bool":
		switch v.Kind() {
		case KindBool:
			return v.AsBool(), true
		case KindInt, KindUint, KindFloat:
			f, _ := v.Float64()
			return f != 0, !math.IsNaN(f)
		}
	case "string":
		if v.Kind() == KindString {
			return v.AsString(), true
		}
	}
	return nil, false
}

func boolTo[T int64 | uint64](b bool) T {
	if b {
		return 1
	}
	return 0
}
