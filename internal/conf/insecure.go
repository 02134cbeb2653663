package conf

import (
	"net"
	"net/url"
	"strings"
)

// The insecure-transport rule, in one place. Each component describes how
// it reaches its peers (a Transports method on its configuration, in the
// component's insecure.go); the config package collects the descriptions
// and Transport.Check judges them all the same way, so a new connector
// cannot invent a laxer rule:
//
//   - credentials sent over a plaintext connection to another machine are
//     an error, unless the block says allow_insecure: true, which turns it
//     into a warning repeated at every start (anyone on the path reads the
//     password, and then owns the account);
//   - insecure_skip_verify is always a warning, loopback or not: the
//     encryption is there but anyone on the path can be the server;
//   - an encrypted connection that does not verify the server (PostgreSQL
//     sslmode require, verify-ca) to another machine is a warning.
//
// Loopback peers (127.0.0.0/8, ::1, localhost, unix sockets) are exempt
// from the plaintext rules: the credentials never leave the machine.

// Transporter is implemented by every configuration block that connects to
// a peer. Transports describes each connection as written (no I/O, no
// defaults needed); key paths in it are relative to the block.
type Transporter interface {
	Transports() []Transport
}

// AllowInsecureKey is the key, in every connecting block, that accepts
// credentials over plaintext.
const AllowInsecureKey = "allow_insecure"

// Transport is one connection a component makes, as its configuration
// describes it.
type Transport struct {
	// Peer names the other end for messages ("broker 10.0.0.5:1883"); it
	// must never hold credentials.
	Peer string
	// Host is the peer's host name or address ("" unknown), or a unix
	// socket path (starting with '/' or '@'). It decides loopback.
	Host string
	// Secure is true when the connection is encrypted and authenticates
	// the peer (TLS, OPC UA SignAndEncrypt).
	Secure bool
	// Credentials is the key of the credential sent to the peer
	// ("password", "sasl", "auth_header", "auth.password"); "" when none is.
	Credentials string
	// Fix says how to encrypt, in the block's words ("use mqtts://").
	Fix string
	// SkipVerify is the key that turns certificate verification off
	// ("tls.insecure_skip_verify") when it is on, else "".
	SkipVerify string
	// Unverified is the key of a setting that encrypts without verifying
	// the server's identity (PostgreSQL sslmode require), "" when none;
	// UnverifiedWhy says what it means.
	Unverified, UnverifiedWhy string
	// AllowInsecure is the block's allow_insecure.
	AllowInsecure bool
}

// Plaintext reports whether t sends credentials in plaintext to another
// machine: what allow_insecure exists to accept.
func (t Transport) Plaintext() bool {
	return t.Credentials != "" && !t.Secure && !IsLoopback(t.Host)
}

// Check applies the rule to t and returns its problems as FieldErrors
// (warnings wrapped in Warning), with key paths relative to the block.
func (t Transport) Check() error {
	var errs Errors
	local := IsLoopback(t.Host)
	if t.Plaintext() {
		fix := t.Fix
		if fix == "" {
			fix = "use TLS"
		}
		if t.AllowInsecure {
			errs.Add(Warnf(t.Credentials, "is sent in plaintext to %s (allow_insecure: true): anyone on the network path can read it", t.Peer))
		} else {
			errs.Addf(t.Credentials, "would be sent in plaintext to %s, where anyone on the network path can read it; %s, or set allow_insecure: true in this block to accept the risk", t.Peer, fix)
		}
	}
	if t.SkipVerify != "" {
		errs.Add(Warnf(t.SkipVerify, "is true: the certificate of %s is not verified, so anyone on the network path can pose as it and read what is sent", t.Peer))
	}
	if t.Unverified != "" && !local {
		errs.Add(Warnf(t.Unverified, "%s: anyone on the network path to %s can pose as the server; use sslmode=verify-full", t.UnverifiedWhy, t.Peer))
	}
	return errs.Err()
}

// IsLoopback reports whether host (a name, an address with or without
// brackets, or a unix socket path) never leaves this machine. Only the
// name localhost is trusted among names: others may resolve anywhere.
func IsLoopback(host string) bool {
	if host == "" {
		return false
	}
	if strings.HasPrefix(host, "/") || strings.HasPrefix(host, "@") {
		return true // a unix socket
	}
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if h == "localhost" {
		return true
	}
	if i := strings.IndexByte(h, '%'); i >= 0 {
		h = h[:i] // an IPv6 zone
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// HostOf returns the host of an address written as a URL or host:port,
// without brackets, port or credentials; "" when it has none.
func HostOf(addr string) string {
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return ""
		}
		return u.Hostname()
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return strings.Trim(addr, "[]")
}

// RedactURL returns raw with the password of its userinfo replaced by
// "xxxxx", for errors, logs and status. A URL that does not parse has its
// whole userinfo replaced: what is not understood may hold a secret.
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return raw
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return scheme + "://xxxxx" + rest[at:]
}
