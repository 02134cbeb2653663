package mqtt

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/model"
)

// selector is a parsed dotted path into a JSON document: a list of steps,
// each an object member (key) or an array element (index ≥ 0).
//
// Syntax: "$" is the document; ".name" selects a member; "[N]" an array
// element; ["name"] or ['name'] a member whose name contains '.', '[' or
// spaces. The leading "$" may be left out ("data.value" = "$.data.value").
// No wildcards, filters or recursive descent: one selector names one value.
type selector []step

type step struct {
	key   string
	index int // -1 for a member step
}

func parseSelector(s string) (selector, error) {
	orig := s
	if s == "" {
		return nil, errors.New("selector is empty")
	}
	if s[0] == '$' {
		s = s[1:]
	} else {
		s = "." + s
	}
	var sel selector
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return nil, fmt.Errorf("selector %q has an empty member name", orig)
			}
			sel = append(sel, step{key: s[:end], index: -1})
			s = s[end:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("selector %q has a '[' without ']'", orig)
			}
			inner := s[1:end]
			if len(inner) >= 2 && (inner[0] == '"' || inner[0] == '\'') && inner[len(inner)-1] == inner[0] {
				sel = append(sel, step{key: inner[1 : len(inner)-1], index: -1})
			} else {
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("selector %q: [%s] is neither an index nor a quoted name", orig, inner)
				}
				sel = append(sel, step{index: n})
			}
			s = s[end+1:]
		default:
			return nil, fmt.Errorf("selector %q: expected '.' or '[' at %q", orig, s)
		}
	}
	return sel, nil
}

// get returns the value sel names in doc (as decoded by encoding/json with
// UseNumber) and whether it exists.
func (sel selector) get(doc any) (any, bool) {
	cur := doc
	for _, st := range sel {
		if st.index < 0 {
			obj, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = obj[st.key]; !ok {
				return nil, false
			}
			continue
		}
		arr, ok := cur.([]any)
		if !ok || st.index >= len(arr) {
			return nil, false
		}
		cur = arr[st.index]
	}
	return cur, true
}

// jsonValue converts a decoded JSON value to a model.Value. null gives the
// invalid Value; an object is refused (select one of its members); arrays
// must hold scalars of one kind, except that integers and floats mix as
// floats.
func jsonValue(v any) (model.Value, error) {
	switch x := v.(type) {
	case nil:
		return model.Value{}, nil
	case bool:
		return model.Bool(x), nil
	case string:
		return model.String(x), nil
	case json.Number:
		return numberValue(string(x))
	case []any:
		out := make([]model.Value, len(x))
		kind, mixed := model.KindInvalid, false
		for i, e := range x {
			if _, isArr := e.([]any); isArr {
				return model.Value{}, fmt.Errorf("[%d]: nested arrays are not supported", i)
			}
			ev, err := jsonValue(e)
			if err != nil {
				return model.Value{}, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = ev
			k := ev.Kind()
			switch {
			case k == model.KindInvalid || k == kind:
			case kind == model.KindInvalid:
				kind = k
			case isNumber(k) && isNumber(kind):
				mixed = true
			default:
				return model.Value{}, fmt.Errorf("[%d]: array mixes %s and %s", i, kind, k)
			}
		}
		if mixed {
			for i := range out {
				if f, ok := out[i].Float64(); ok {
					out[i] = model.Float(f)
				}
			}
		}
		return model.Array(out), nil
	case map[string]any:
		return model.Value{}, errors.New("value is an object; select one of its members")
	}
	return model.Value{}, fmt.Errorf("unexpected JSON type %T", v)
}

func isNumber(k model.Kind) bool {
	return k == model.KindInt || k == model.KindUint || k == model.KindFloat
}

// numberValue maps a JSON number literal to Int, Uint (beyond int64) or
// Float (with a fraction or exponent, or beyond uint64).
func numberValue(s string) (model.Value, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return model.Int(i), nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return model.Uint(u), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && (!errors.Is(err, strconv.ErrRange) || math.IsInf(f, 0)) {
		return model.Value{}, fmt.Errorf("number %s: %w", s, err)
	}
	return model.Float(f), nil
}

// jsonTimestamp converts a selected timestamp to Unix ns. Numbers (or
// numeric strings) are read in unit; rfc3339 wants a string.
func jsonTimestamp(v any, unit string) (int64, error) {
	var num string
	switch x := v.(type) {
	case json.Number:
		num = string(x)
	case string:
		if unit == UnitRFC3339 {
			t, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return 0, fmt.Errorf("timestamp: %w", err)
			}
			return t.UnixNano(), nil
		}
		num = strings.TrimSpace(x)
	default:
		return 0, fmt.Errorf("timestamp is a %s, not a number or string", jsonTypeName(v))
	}
	if unit == UnitRFC3339 {
		return 0, errors.New("timestamp is a number but timestamp_unit is rfc3339")
	}
	scale := map[string]float64{UnitSeconds: 1e9, UnitMillis: 1e6, UnitNanos: 1}[unit]
	if i, err := strconv.ParseInt(num, 10, 64); err == nil {
		s := int64(scale)
		if i > math.MaxInt64/s || i < math.MinInt64/s {
			return 0, fmt.Errorf("timestamp %d %s is out of range", i, unit)
		}
		return i * s, nil
	}
	if ns, ok := decimalScaled(num, int64(scale)); ok {
		return ns, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q is not a number", num)
	}
	ns := f * scale
	if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
		return 0, fmt.Errorf("timestamp %s %s is out of range", num, unit)
	}
	return int64(math.Round(ns)), nil
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// decimalScaled computes a plain decimal ("1732568400.123") times scale
// exactly, which float64 cannot for nanosecond timestamps. ok is false for
// other forms (exponents) or on overflow; the caller then falls back to
// float arithmetic.
func decimalScaled(num string, scale int64) (int64, bool) {
	intPart, frac, found := strings.Cut(num, ".")
	if !found || frac == "" || strings.ContainsAny(frac, "+-eE") {
		return 0, false
	}
	neg := strings.HasPrefix(intPart, "-")
	i, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || i > math.MaxInt64/scale || i < math.MinInt64/scale {
		return 0, false
	}
	// Digits of frac beyond the scale's resolution are truncated.
	var f int64
	unit := scale
	for _, c := range frac {
		if c < '0' || c > '9' {
			return 0, false
		}
		unit /= 10
		if unit == 0 {
			break
		}
		f += int64(c-'0') * unit
	}
	if neg {
		return i*scale - f, true
	}
	return i*scale + f, true
}
