package scale

import (
	"math"
	"strconv"
	"strings"

	"github.com/weir-edge/weir/model"
)

// Reasons set on the quality of samples a rule marks; constant so that
// marking never allocates.
const (
	ReasonNaN        = "NaN"
	ReasonAboveMax   = "above max"
	ReasonBelowMin   = "below min"
	ReasonNotNumber  = "cast: not a number"
	ReasonNotBool    = "cast: not a boolean"
	ReasonOverflow   = "cast: out of range"
	ReasonCastNaN    = "cast: NaN has no integer value"
	ReasonCastArray  = "cast: array"
	twoTo63          = 9223372036854775808.0  // 2^63, first float64 above MaxInt64
	twoTo64          = 18446744073709551616.0 // 2^64, first float64 above MaxUint64
	castToFloat      = "float"
	castToInt        = "int"
	castToUint       = "uint"
	castToBool       = "bool"
	castToString     = "string"
	overflowSaturate = "saturate"
)

// caster is a compiled Cast.
type caster struct {
	to       string
	round    func(float64) float64
	saturate bool
}

func newCaster(c *Cast) *caster {
	k := &caster{to: c.To, saturate: c.Overflow == overflowSaturate}
	switch c.Rounding {
	case "half_even":
		k.round = math.RoundToEven
	case "floor":
		k.round = math.Floor
	case "ceil":
		k.round = math.Ceil
	case "trunc":
		k.round = math.Trunc
	default:
		k.round = math.Round
	}
	return k
}

// cast converts v; a non-empty reason means the sample becomes bad with an
// invalid value.
func (k *caster) cast(v model.Value) (model.Value, string) {
	switch k.to {
	case castToFloat:
		return k.toFloat(v)
	case castToInt:
		return k.toInt(v)
	case castToUint:
		return k.toUint(v)
	case castToBool:
		return k.toBool(v)
	case castToString:
		return k.toString(v), ""
	}
	return v, ""
}

func (k *caster) toFloat(v model.Value) (model.Value, string) {
	switch v.Kind() {
	case model.KindFloat:
		return v, ""
	case model.KindString:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.AsString()), 64)
		if err != nil && !isRangeErr(err) {
			return model.Value{}, ReasonNotNumber
		}
		return model.Float(f), ""
	case model.KindArray:
		return model.Value{}, ReasonCastArray
	}
	f, _ := v.Float64()
	return model.Float(f), ""
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func (k *caster) toInt(v model.Value) (model.Value, string) {
	switch v.Kind() {
	case model.KindInt:
		return v, ""
	case model.KindBool:
		if v.AsBool() {
			return model.Int(1), ""
		}
		return model.Int(0), ""
	case model.KindUint:
		if u := v.AsUint(); u > math.MaxInt64 {
			return k.overflow(model.Int(math.MaxInt64))
		}
		return model.Int(int64(v.AsUint())), ""
	case model.KindFloat:
		return k.floatToInt(v.AsFloat())
	case model.KindString:
		s := strings.TrimSpace(v.AsString())
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return model.Int(i), ""
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !isRangeErr(err) {
			return model.Value{}, ReasonNotNumber
		}
		return k.floatToInt(f)
	}
	return model.Value{}, ReasonCastArray
}

func (k *caster) floatToInt(f float64) (model.Value, string) {
	if math.IsNaN(f) {
		return model.Value{}, ReasonCastNaN
	}
	r := k.round(f)
	switch {
	case r >= twoTo63:
		return k.overflow(model.Int(math.MaxInt64))
	case r < -twoTo63:
		return k.overflow(model.Int(math.MinInt64))
	}
	return model.Int(int64(r)), ""
}

func (k *caster) toUint(v model.Value) (model.Value, string) {
	switch v.Kind() {
	case model.KindUint:
		return v, ""
	case model.KindBool:
		if v.AsBool() {
			return model.Uint(1), ""
		}
		return model.Uint(0), ""
	case model.KindInt:
		if v.AsInt() < 0 {
			return k.overflow(model.Uint(0))
		}
		return model.Uint(uint64(v.AsInt())), ""
	case model.KindFloat:
		return k.floatToUint(v.AsFloat())
	case model.KindString:
		s := strings.TrimSpace(v.AsString())
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return model.Uint(u), ""
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !isRangeErr(err) {
			return model.Value{}, ReasonNotNumber
		}
		return k.floatToUint(f)
	}
	return model.Value{}, ReasonCastArray
}

func (k *caster) floatToUint(f float64) (model.Value, string) {
	if math.IsNaN(f) {
		return model.Value{}, ReasonCastNaN
	}
	r := k.round(f)
	switch {
	case r >= twoTo64:
		return k.overflow(model.Uint(math.MaxUint64))
	case r < 0:
		return k.overflow(model.Uint(0))
	}
	return model.Uint(uint64(r)), ""
}

// overflow applies the overflow rule: the saturated value, or bad.
func (k *caster) overflow(sat model.Value) (model.Value, string) {
	if k.saturate {
		return sat, ""
	}
	return model.Value{}, ReasonOverflow
}

func (k *caster) toBool(v model.Value) (model.Value, string) {
	switch v.Kind() {
	case model.KindBool:
		return v, ""
	case model.KindString:
		b, err := strconv.ParseBool(strings.TrimSpace(v.AsString()))
		if err != nil {
			return model.Value{}, ReasonNotBool
		}
		return model.Bool(b), ""
	case model.KindArray:
		return model.Value{}, ReasonCastArray
	}
	f, _ := v.Float64()
	if math.IsNaN(f) {
		return model.Value{}, ReasonNotBool
	}
	return model.Bool(f != 0), ""
}

// toString formats v: shortest round-trip form for floats ("NaN", "+Inf"
// for the non-finite ones), JSON for arrays. This allocates.
func (k *caster) toString(v model.Value) model.Value {
	switch v.Kind() {
	case model.KindString:
		return v
	case model.KindFloat:
		return model.String(strconv.FormatFloat(v.AsFloat(), 'g', -1, 64))
	case model.KindInvalid:
		return v
	}
	return model.String(string(v.AppendJSON(nil)))
}
