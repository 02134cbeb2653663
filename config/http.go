package config

import (
	"errors"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
)

// HTTPTLS is the http.tls block: the API's certificate and the CA that
// verifies client certificates.
type HTTPTLS struct {
	// Enabled turns HTTPS on or off. Absent: on when the listen address is
	// reachable from other machines or a cert_file or client_ca is given,
	// off on a loopback address (the demo's http://127.0.0.1:8080). A
	// client_ca alone turns it on because client certificates exist only
	// in TLS: on plain HTTP the configured mTLS would silently do nothing.
	Enabled *bool `yaml:"enabled"`
	// CertFile and KeyFile are the certificate (PEM, chain after the leaf)
	// and its key, re-read when they change. Absent with TLS on: a
	// self-signed certificate is generated in DATA_DIR/tls on the first
	// start and reused; its fingerprint is printed at every start.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCA is a PEM bundle; client certificates are verified against
	// it when a client presents one (the auth block maps them to users).
	ClientCA string `yaml:"client_ca"`
}

// Bounds of the http limits, so that a typo cannot disable them.
const (
	maxHTTPConnections = 100_000
	minHTTPHeaderBytes = 1 << 10
	maxHTTPHeaderBytes = 1 << 20
	minHTTPBodyBytes   = 1 << 10
	maxHTTPBodyBytes   = 64 << 20
)

// hostPattern is a DNS name, optionally "*." before it.
var hostPattern = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$`)

// Validate checks the http block without I/O. A listen address other
// machines can reach must use TLS unless insecure says otherwise.
func (h *HTTP) Validate() error {
	var errs conf.Errors
	if h.Listen != "" {
		if err := conf.CheckListen(h.Listen); err != nil {
			errs.Addf("listen", "%v", err)
		}
	}
	t := &h.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		errs.Addf("tls.key_file", "is required when tls.cert_file is set")
	case t.KeyFile != "" && t.CertFile == "":
		errs.Addf("tls.cert_file", "is required when tls.key_file is set")
	}
	if t.Enabled != nil && !*t.Enabled {
		for key, v := range map[string]string{"tls.cert_file": t.CertFile, "tls.client_ca": t.ClientCA} {
			if v != "" {
				errs.Addf(key, "is set but tls.enabled is false; remove one of them")
			}
		}
	}
	if h.Listen != "" && conf.CheckListen(h.Listen) == nil && !ListenIsLoopback(h.Listen) && !h.TLSOn(false) && !h.Insecure {
		errs.Addf("tls.enabled", "false on %s, which other machines can reach: passwords, tokens and setpoints would cross the network in clear text; "+
			"remove it (a self-signed certificate is made) or set http.insecure: true to accept that", h.Listen)
	}
	for i, host := range h.AllowedHosts {
		if net.ParseIP(strings.Trim(host, "[]")) == nil && !hostPattern.MatchString(host) {
			errs.Addf(conf.Index("allowed_hosts", i), "%q is not a host name or address (a name, an IP, or *.domain for every subdomain)", host)
		}
	}
	checkRange(&errs, "max_connections_per_client", int64(h.MaxConnectionsPerClient), 1, maxHTTPConnections)
	checkRange(&errs, "max_connections", int64(h.MaxConnections), 1, maxHTTPConnections)
	checkRange(&errs, "max_header_bytes", int64(h.MaxHeaderBytes), minHTTPHeaderBytes, maxHTTPHeaderBytes)
	checkRange(&errs, "max_body_bytes", h.MaxBodyBytes, minHTTPBodyBytes, maxHTTPBodyBytes)
	if h.MaxConnectionsPerClient > 0 && h.MaxConnections > 0 && h.MaxConnectionsPerClient > h.MaxConnections {
		errs.Addf("max_connections_per_client", "%d is more than max_connections (%d)", h.MaxConnectionsPerClient, h.MaxConnections)
	}
	return errs.Err()
}

// checkRange reports a set value (0 means the default) outside [lo, hi].
func checkRange(errs *conf.Errors, key string, v, lo, hi int64) {
	if v != 0 && (v < lo || v > hi) {
		errs.Addf(key, "must be between %d and %d (absent: the default)", lo, hi)
	}
}

// TLSOn reports whether the API serves HTTPS on a listener that is on a
// loopback address or not (the gateway decides with the address it
// actually bound, which a flag may have changed).
func (h *HTTP) TLSOn(loopback bool) bool {
	if h.TLS.Enabled != nil {
		return *h.TLS.Enabled
	}
	return !loopback || h.TLS.CertFile != "" || h.TLS.ClientCA != ""
}

// ListenIsLoopback reports whether a listen address is reachable from this
// machine only: localhost or a loopback IP. An empty host (every
// interface) or another name is not.
func ListenIsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// check reads the files the http block names (`weir validate`): the
// certificate pair and the client CA as tls blocks are checked, and warns
// about plain HTTP allowed by insecure.
func (h *HTTP) check(now time.Time) error {
	var errs conf.Errors
	t := h.TLS
	if t.CertFile != "" && t.KeyFile != "" {
		pair := tlsconf.Config{CertFile: t.CertFile, KeyFile: t.KeyFile}
		errs.AddPrefixed("tls", pair.Check(now))
	}
	if t.ClientCA != "" {
		ca := tlsconf.Config{CAFile: t.ClientCA}
		errs.AddPrefixed("tls", renameKey(ca.Check(now), "ca_file", "client_ca"))
	}
	if h.Listen != "" && !ListenIsLoopback(h.Listen) && !h.TLSOn(false) && h.Insecure {
		errs.Add(conf.Warnf("insecure", "plain HTTP on %s: passwords, tokens and setpoints cross the network in clear text (warned at every start)", h.Listen))
	}
	return errs.Err()
}

// renameKey moves the problems tlsconf reports at key from to key to.
func renameKey(err error, from, to string) error {
	if err == nil {
		return nil
	}
	var out conf.Errors
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var fe *conf.FieldError
		if errors.As(e, &fe) && fe.Path == from {
			out.Add(&conf.FieldError{Path: to, Err: fe.Err})
			continue
		}
		out.Add(e)
	}
	return out.Err()
}
