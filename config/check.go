package config

import (
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
)

var tlsType = reflect.TypeOf(tlsconf.Config{})

var jwtType = reflect.TypeOf(auth.JWTConfig{})

// Check does what Validate must not: it reads what the configuration names
// on this machine — every secret ({env: …} or {file: …}: set, non-empty,
// readable, not open to other users) and every tls block's files (readable,
// PEM, key matching certificate, not expired at now) — and returns each
// problem as a conf.FieldError with the full key path; a certificate about
// to expire or a file open to other users is a conf.Warning. `weir
// validate` runs it unless -offline; the gateway reads the same things at
// connect time and fails the component with the same cause.
//
// Secrets and tls blocks sit at a dozen places in as many packages (every
// network sink, the OPC UA source, rule actions, the audit key, the MQTT
// command endpoints), so Check finds them by walking the decoded Config
// with reflection, following the yaml tags to build each key path. A
// method on every component would have to be kept in step with each new
// key by hand, and a secret one of them forgot would silently go
// unchecked. The walk only reads values; what a key means stays with the
// component's own Validate.
func Check(c *Config, now time.Time) error {
	var errs conf.Errors
	walkValues(reflect.ValueOf(c), "", func(path string, v reflect.Value) bool {
		switch v.Type() {
		case secretType:
			if s := v.Interface().(conf.Secret); s.IsSet() {
				errs.AddPrefixed(path, s.Check())
			}
			return false
		case tlsType:
			tc := v.Interface().(tlsconf.Config)
			errs.AddPrefixed(path, tc.Check(now))
			return false
		case jwtType:
			errs.AddPrefixed(path, v.Interface().(auth.JWTConfig).Check())
		}
		return true
	})
	errs.AddPrefixed("http", c.HTTP.check(now)) // its tls block is not a tlsconf.Config
	// Insecure but working settings; not in Validate, which would stop the
	// gateway over them (the gateway logs them at every start).
	errs.AddPrefixed("security_events", c.SecurityEvents.Warnings())
	return errs.Err()
}

// walkValues calls visit with every struct in v and its key path, and
// descends into it while visit returns true; lists, maps and pointers are
// followed, nil ones skipped.
func walkValues(v reflect.Value, path string, visit func(string, reflect.Value) bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkValues(v.Elem(), path, visit)
		}
	case reflect.Struct:
		if !visit(path, v) {
			return
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			switch {
			case name == "-":
			case strings.Contains(","+opts+",", ",inline,"):
				walkValues(v.Field(i), path, visit)
			default:
				if name == "" {
					name = strings.ToLower(sf.Name)
				}
				walkValues(v.Field(i), conf.JoinPath(path, name), visit)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkValues(v.Index(i), conf.Index(path, i), visit)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			walkValues(v.MapIndex(k), conf.JoinPath(path, k.String()), visit)
		}
	}
}

// validateSecrets runs every secret's own Validate (no I/O), wherever the
// secret sits: some components check theirs, a forgotten one must not slip
// through. A duplicate of a component's own message is removed by parse.
func validateSecrets(c *Config) error {
	var errs conf.Errors
	walkValues(reflect.ValueOf(c), "", func(path string, v reflect.Value) bool {
		if v.Type() == secretType {
			// A reference holding an unresolved ${NAME} (offline) is not judged.
			if s := v.Interface().(conf.Secret); !strings.Contains(s.Env+s.File, unsetMark) {
				errs.AddPrefixed(path, s.Validate())
			}
			return false
		}
		return true
	})
	return errs.Err()
}
