package scale

import (
	"math"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/processors/match"
)

// Config is the `scale:` block of a processor: rules tried in order, the
// first whose match list fits a sample's path applies.
type Config struct {
	Rules []Rule `yaml:"rules"`
}

// Rule transforms the samples it matches, in this order: value*scale +
// offset, unit conversion, NaN policy, clamp, cast. Each step is optional.
//
// Scale and Offset are pointers because 0 is a meaningful setting distinct
// from "not given".
type Rule struct {
	Match   []string `yaml:"match"`
	Scale   *float64 `yaml:"scale"`
	Offset  *float64 `yaml:"offset"`
	Convert *Convert `yaml:"convert"`
	// NaN is what happens to a float NaN after scaling: keep (default),
	// bad (quality bad, reason "NaN") or drop.
	NaN   string `yaml:"nan"`
	Clamp *Clamp `yaml:"clamp"`
	Cast  *Cast  `yaml:"cast"`
}

// Convert converts between two units of the same dimension (see README).
type Convert struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Clamp bounds a numeric value to [Min, Max]; either bound may be omitted.
// Action says what happens outside: clamp (default: the value becomes the
// bound, quality unchanged), uncertain or bad (value unchanged, quality
// lowered with reason "above max"/"below min"), or drop.
type Clamp struct {
	Min    *float64 `yaml:"min"`
	Max    *float64 `yaml:"max"`
	Action string   `yaml:"action"`
}

// Cast converts the value to another kind. Rounding (float → int/uint):
// nearest (default, half away from zero), half_even, floor, ceil, trunc.
// Overflow (a value the target cannot hold): saturate (default) or bad.
type Cast struct {
	To       string `yaml:"to"`
	Rounding string `yaml:"rounding"`
	Overflow string `yaml:"overflow"`
}

// Values accepted by the enumerated keys.
var (
	nanPolicies   = []string{"keep", "bad", "drop"}
	clampActions  = []string{"clamp", "uncertain", "bad", "drop"}
	castTargets   = []string{"float", "int", "uint", "bool", "string"}
	roundingModes = []string{"nearest", "half_even", "floor", "ceil", "trunc"}
	overflowModes = []string{"saturate", "bad"}
)

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// setDefaults fills keys left out; called by New on its own copy.
func (c *Config) setDefaults() {
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.NaN == "" {
			r.NaN = "keep"
		}
		if r.Clamp != nil && r.Clamp.Action == "" {
			r.Clamp.Action = "clamp"
		}
		if r.Cast != nil {
			if r.Cast.Rounding == "" {
				r.Cast.Rounding = "nearest"
			}
			if r.Cast.Overflow == "" {
				r.Cast.Overflow = "saturate"
			}
		}
	}
}

// Validate checks the configuration as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	if len(c.Rules) == 0 {
		errs.Addf("rules", "at least one rule is required")
	}
	for i, r := range c.Rules {
		p := conf.Index("rules", i)
		errs.AddPrefixed(p, match.Validate("match", r.Match))
		if r.Scale == nil && r.Offset == nil && r.Convert == nil && r.Clamp == nil && r.Cast == nil && r.NaN == "" {
			errs.Addf(p, "rule does nothing: set scale, offset, convert, nan, clamp or cast")
		}
		if r.Scale != nil && !finite(*r.Scale) {
			errs.Addf(conf.JoinPath(p, "scale"), "must be a finite number")
		}
		if r.Offset != nil && !finite(*r.Offset) {
			errs.Addf(conf.JoinPath(p, "offset"), "must be a finite number")
		}
		if r.NaN != "" && !oneOf(r.NaN, nanPolicies) {
			errs.Addf(conf.JoinPath(p, "nan"), "%q is not one of %s", r.NaN, strings.Join(nanPolicies, ", "))
		}
		if cv := r.Convert; cv != nil {
			from, okF := lookupUnit(cv.From)
			to, okT := lookupUnit(cv.To)
			if !okF {
				errs.Addf(conf.JoinPath(p, "convert.from"), "unknown unit %q (see the unit table in the README)", cv.From)
			}
			if !okT {
				errs.Addf(conf.JoinPath(p, "convert.to"), "unknown unit %q (see the unit table in the README)", cv.To)
			}
			if okF && okT && from.dim != to.dim {
				errs.Addf(conf.JoinPath(p, "convert"), "cannot convert %s (%s) to %s (%s)", cv.From, from.dim, cv.To, to.dim)
			}
		}
		if cl := r.Clamp; cl != nil {
			cp := conf.JoinPath(p, "clamp")
			if cl.Min == nil && cl.Max == nil {
				errs.Addf(cp, "set min, max or both")
			}
			if cl.Min != nil && cl.Max != nil && !(*cl.Min <= *cl.Max) {
				errs.Addf(cp, "min (%g) must not exceed max (%g)", *cl.Min, *cl.Max)
			}
			if cl.Min != nil && math.IsNaN(*cl.Min) {
				errs.Addf(conf.JoinPath(cp, "min"), "must be a number")
			}
			if cl.Max != nil && math.IsNaN(*cl.Max) {
				errs.Addf(conf.JoinPath(cp, "max"), "must be a number")
			}
			if cl.Action != "" && !oneOf(cl.Action, clampActions) {
				errs.Addf(conf.JoinPath(cp, "action"), "%q is not one of %s", cl.Action, strings.Join(clampActions, ", "))
			}
		}
		if ca := r.Cast; ca != nil {
			cp := conf.JoinPath(p, "cast")
			if !oneOf(ca.To, castTargets) {
				errs.Addf(conf.JoinPath(cp, "to"), "%q is not one of %s", ca.To, strings.Join(castTargets, ", "))
			}
			if ca.Rounding != "" && !oneOf(ca.Rounding, roundingModes) {
				errs.Addf(conf.JoinPath(cp, "rounding"), "%q is not one of %s", ca.Rounding, strings.Join(roundingModes, ", "))
			}
			if ca.Overflow != "" && !oneOf(ca.Overflow, overflowModes) {
				errs.Addf(conf.JoinPath(cp, "overflow"), "%q is not one of %s", ca.Overflow, strings.Join(overflowModes, ", "))
			}
		}
	}
	return errs.Err()
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
