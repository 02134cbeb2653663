package writegate

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/security"
)

// Defaults applied to keys left out of an allowing policy.
const (
	// DefaultMaxAge: a command older than this never executes.
	DefaultMaxAge = 5 * time.Second
	// DefaultMaxRate bounds writes per tag even when a policy names no
	// rate, so a runaway rule cannot hammer a PLC.
	DefaultMaxRate = "60/min"
	// MaxMaxAge caps max_age: a command an hour old is not a command.
	MaxMaxAge = time.Hour
)

// Config is the gate's configuration: the top-level `write_policies:`
// list. Policies are tried in order and the first whose match covers the
// tag decides; a tag no policy matches cannot be written (default deny).
type Config struct {
	Policies []Policy `yaml:"write_policies"`
	// Limits are the top-level `write_limits:` block: the per-caller
	// budget every attempt spends before any policy is looked at.
	Limits Limits `yaml:"write_limits"`
}

// Policy allows (or, with allow: false, explicitly refuses) writes to the
// tags its match covers.
type Policy struct {
	// Match is a tag path with MQTT wildcards: '+' is one level, '#' (last
	// level only) any number of levels, including none.
	Match string `yaml:"match"`
	// Allow must be true for writes to pass. A policy with allow: false
	// refuses the tags it matches, which lets a narrow deny come before a
	// broad allow; it takes no other keys.
	Allow bool `yaml:"allow"`
	// Callers are glob patterns ('*' is any run of characters) of the
	// callers allowed: "api:*", "rule:overheat". An allowing policy needs
	// callers, roles or both.
	Callers []string `yaml:"callers"`
	// Roles allow only callers whose authenticated role includes one of
	// them (an engineer includes operator). With callers too, both must
	// match: roles say what kind of user, callers which ones.
	Roles []security.Role `yaml:"roles"`
	// Type the value must have: float (any finite number), int (an
	// integer, or a float with no fraction), bool or string. Empty accepts
	// any scalar and leaves the check to the device's encoding.
	Type string `yaml:"type"`
	// Min and Max bound numeric values (inclusive), in engineering units.
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
	// MaxRate is a token bucket per tag: "10/min" allows bursts of 10 and
	// 10 writes a minute on average. Units: s, min, h. Default 60/min.
	MaxRate string `yaml:"max_rate"`
	// MaxAge refuses commands issued longer ago than this (by the gate's
	// clock), so nothing buffered during an outage executes late. Default
	// 5s, at most 1h.
	MaxAge time.Duration `yaml:"max_age"`
}

// Validate checks the policies as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	for i := range c.Policies {
		errs.AddPrefixed(conf.Index("write_policies", i), c.Policies[i].validate())
	}
	errs.AddPrefixed("write_limits", c.Limits.validate())
	return errs.Err()
}

var valueTypes = map[string]bool{"": true, "float": true, "int": true, "bool": true, "string": true}

func (p *Policy) validate() error {
	var errs conf.Errors
	if err := validMatch(p.Match); err != nil {
		errs.Addf("match", "%w", err)
	}
	if !p.Allow {
		if len(p.Callers) > 0 || len(p.Roles) > 0 || p.Type != "" || p.Min != nil || p.Max != nil || p.MaxRate != "" || p.MaxAge != 0 {
			errs.Addf("allow", "a deny policy (allow: false) takes only match")
		}
		return errs.Err()
	}
	if len(p.Callers) == 0 && len(p.Roles) == 0 { // roles alone will do too
		errs.Addf("callers", "at least one caller pattern is required (e.g. \"api:*\")")
	}
	for i, r := range p.Roles {
		if !r.Valid() {
			errs.Addf(conf.Index("roles", i), "unknown role %q (want viewer, operator, engineer or admin)", string(r))
		}
	}
	for i, c := range p.Callers {
		if strings.TrimSpace(c) == "" {
			errs.Addf(conf.Index("callers", i), "must not be empty")
		}
	}
	if !valueTypes[p.Type] {
		errs.Addf("type", "unknown type %q (want float, int, bool or string)", p.Type)
	}
	if (p.Min != nil || p.Max != nil) && (p.Type == "bool" || p.Type == "string") {
		errs.Addf("type", "%s values cannot have min or max", p.Type)
	}
	for key, v := range map[string]*float64{"min": p.Min, "max": p.Max} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			errs.Addf(key, "must be a finite number")
		}
	}
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		errs.Addf("min", "%g is greater than max %g", *p.Min, *p.Max)
	}
	if p.MaxRate != "" {
		if _, err := parseRate(p.MaxRate); err != nil {
			errs.Addf("max_rate", "%w", err)
		}
	}
	if p.MaxAge < 0 || p.MaxAge > MaxMaxAge {
		errs.Addf("max_age", "%s is out of range 0..%s (0: default %s)", p.MaxAge, MaxMaxAge, DefaultMaxAge)
	}
	return errs.Err()
}

// validMatch checks a pattern: a valid path but for whole-level wildcards.
func validMatch(m string) error {
	if m == "" {
		return errors.New("is required (a tag path, '+' and '#' allowed)")
	}
	levels := strings.Split(m, "/")
	for i, l := range levels {
		switch {
		case l == "":
			return fmt.Errorf("%q has an empty level", m)
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("%q: '#' must be the last level", m)
		case l != "+" && l != "#" && strings.ContainsAny(l, "+#"):
			return fmt.Errorf("%q: a wildcard must be a whole level", m)
		case strings.ContainsFunc(l, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return fmt.Errorf("%q contains a control character", m)
		}
	}
	return nil
}

// matchPath reports whether the MQTT-style pattern covers path.
func matchPath(pattern, path string) bool {
	for {
		pl, prest, pmore := strings.Cut(pattern, "/")
		if pl == "#" {
			return true
		}
		l, rest, more := strings.Cut(path, "/")
		if pl != "+" && pl != l {
			return false
		}
		switch {
		case !pmore && !more:
			return true
		case !more:
			// "a/#" also matches "a", as in MQTT.
			return prest == "#"
		case !pmore:
			return false
		}
		pattern, path = prest, rest
	}
}

// matchGlob reports whether s matches pattern, where '*' is any run of
// characters (also empty) and everything else is literal.
func matchGlob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// rate is a parsed max_rate.
type rate struct {
	n   float64       // burst and tokens per per
	per time.Duration // refill period
	src string
}

// parseRate reads "N/unit" with N a positive integer and unit s, min or h
// (also sec, second, m, minute, hour).
func parseRate(s string) (rate, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if !ok || err != nil || n < 1 || n > 1_000_000 {
		return rate{}, fmt.Errorf("%q is not N/unit with N in 1..1000000 (e.g. 10/min)", s)
	}
	var per time.Duration
	switch strings.TrimSpace(unit) {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	default:
		return rate{}, fmt.Errorf("%q: unknown unit %q (want s, min or h)", s, unit)
	}
	return rate{n: float64(n), per: per, src: strings.TrimSpace(s)}, nil
}
