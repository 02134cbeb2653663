package config

import (
	"errors"
	"reflect"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
)

var transporterType = reflect.TypeOf((*conf.Transporter)(nil)).Elem()

// insecureTransports applies the insecure-transport rule (conf.Transport)
// to every block that connects somewhere: credentials over plaintext to
// another machine are errors unless the block says allow_insecure,
// insecure_skip_verify and unverified PostgreSQL sslmodes are warnings.
// Blocks are found as Check finds secrets, by walking the decoded Config:
// whatever implements conf.Transporter (an MQTT block through its embedded
// mqttclient.Broker) is judged, wherever it sits, so a new connector needs
// no line here. No I/O: parse runs it, so `weir validate` (offline too)
// and the gateway's start refuse the same files.
func insecureTransports(c *Config) error {
	var errs conf.Errors
	walkValues(reflect.ValueOf(c), "", func(path string, v reflect.Value) bool {
		tr, ok := asTransporter(v)
		if !ok {
			return true
		}
		allowed, needed, unknown := false, false, false
		for _, t := range tr.Transports() {
			if strings.Contains(t.Host+t.Peer, unsetMark) {
				unknown = true
				continue // an unresolved ${NAME}: unknown, not judged
			}
			errs.AddPrefixed(path, t.Check())
			allowed = allowed || t.AllowInsecure
			needed = needed || t.Plaintext()
		}
		// A stale allow_insecure would let the next plaintext change
		// through without a word.
		if allowed && !needed && !unknown {
			errs.Add(conf.Warnf(conf.JoinPath(path, conf.AllowInsecureKey),
				"is true, but this block sends no credentials in plaintext to another machine; remove it, so that a later change that does is refused"))
		}
		return false
	})
	return errs.Err()
}

// asTransporter returns v as a conf.Transporter when its type (or a pointer
// to it, for the pointer-receiver methods) is one.
func asTransporter(v reflect.Value) (conf.Transporter, bool) {
	switch {
	case v.CanAddr() && v.Addr().Type().Implements(transporterType):
		return v.Addr().Interface().(conf.Transporter), true
	case v.Type().Implements(transporterType):
		return v.Interface().(conf.Transporter), true
	case reflect.PointerTo(v.Type()).Implements(transporterType):
		p := reflect.New(v.Type()) // a map value is not addressable
		p.Elem().Set(v)
		return p.Interface().(conf.Transporter), true
	}
	return nil, false
}

// InsecureWarnings returns the insecure settings the file accepts
// explicitly (allow_insecure, insecure_skip_verify, unverified sslmodes),
// each with its key path, for the gateway to log at every start and to
// report as security events. Errors are not returned: a Config that has
// them does not load; nor is a stale allow_insecure (nothing runs
// insecurely because of it; `weir validate` reports it).
func (c *Config) InsecureWarnings() []conf.FieldError {
	err := insecureTransports(c)
	if err == nil {
		return nil
	}
	var out []conf.FieldError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *conf.FieldError
		if conf.IsWarning(e) && errors.As(e, &fe) && !strings.HasSuffix(fe.Path, "."+conf.AllowInsecureKey) {
			out = append(out, *fe)
		}
	}
	return out
}
