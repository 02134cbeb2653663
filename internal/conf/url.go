package conf

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Schemes describes the URLs an address key accepts, so that the usual
// mistakes (no scheme, another protocol's scheme) get a "did you mean"
// with the corrected URL instead of a parser's complaint. Every component
// checks its addresses with one, so the hints read the same everywhere.
type Schemes struct {
	// Accepted lists every scheme the key takes, for the message.
	Accepted []string
	// Plain is suggested for a bare host[:port] and for a wrong scheme.
	Plain string
	// Secure is suggested instead of Plain for a TLS-looking scheme
	// (https, tls, ssl, …) and for a bare address on SecurePort; "" if the
	// key has no TLS scheme.
	Secure     string
	SecurePort string
}

// HTTPSchemes are the schemes of every HTTP(S) URL key.
var HTTPSchemes = Schemes{Accepted: []string{"http", "https"}, Plain: "http", Secure: "https", SecurePort: "443"}

// secureSchemes look like "TLS" whatever the protocol they belong to.
var secureSchemes = map[string]bool{"https": true, "tls": true, "ssl": true, "mqtts": true, "opc.https": true}

// confusable are the schemes of the other address keys (and the generic
// transport names): written for the wrong key, they get the right scheme
// suggested. Anything else (ftp, ws, mysql) is another protocol whose port
// and path would not carry over, so no guess is made.
var confusable = map[string]bool{"http": true, "https": true, "tcp": true, "udp": true, "ssl": true, "tls": true,
	"mqtt": true, "mqtts": true, "nats": true, "opc.tcp": true, "opc.https": true, "postgres": true,
	"postgresql": true, "kafka": true, "modbus": true, "modbus+tcp": true, "modbus-tcp": true}

// hostPort matches what an operator writes for an address without a
// scheme: a host name, IPv4 or bracketed IPv6, an optional port and path.
var hostPort = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:([0-9]{1,5}))?(/\S*)?$`)

// Check returns nil when raw is a URL with one of the accepted schemes (the
// caller checks host, port and path); otherwise an error saying what is
// wrong and, when the fix is clear, "did you mean …?". The value is not
// repeated in the message except in the suggestion, and no suggestion is
// made for a URL holding credentials.
func (s Schemes) Check(raw string) error {
	want := s.Plain + "://host:port"
	if !strings.Contains(raw, "://") {
		m := hostPort.FindStringSubmatch(raw)
		if m == nil || (m[3] == "" && !strings.Contains(m[1], ".") && m[1] != "localhost") {
			return fmt.Errorf("is not a URL (want %s)", want)
		}
		scheme := s.Plain
		if s.Secure != "" && m[3] == s.SecurePort {
			scheme = s.Secure
		}
		return fmt.Errorf("has no scheme; did you mean %s://%s?", scheme, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URL (want %s)", want)
	}
	for _, a := range s.Accepted {
		if u.Scheme == a {
			return nil
		}
	}
	msg := fmt.Sprintf("scheme %q is not supported (%s)", u.Scheme, strings.Join(s.Accepted, ", "))
	if u.User != nil || u.Hostname() == "" || !confusable[u.Scheme] {
		return errors.New(msg)
	}
	scheme := s.Plain
	if s.Secure != "" && secureSchemes[u.Scheme] {
		scheme = s.Secure
	}
	return fmt.Errorf("%s; did you mean %s://%s%s?", msg, scheme, u.Host, u.EscapedPath())
}

// CheckHostPort checks an address written as host:port (Modbus devices,
// Kafka brokers), suggesting the fix for a URL or a missing port;
// defaultPort fills the suggestion.
func CheckHostPort(raw, defaultPort string) error {
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil || u.User != nil || u.Hostname() == "" {
			return errors.New("must be host:port, not a URL")
		}
		port := u.Port()
		if port == "" {
			port = defaultPort
		}
		return fmt.Errorf("must be host:port, not a URL; did you mean %s?", net.JoinHostPort(u.Hostname(), port))
	}
	host, port, err := net.SplitHostPort(raw)
	if err != nil {
		if net.ParseIP(raw) != nil || hostPort.MatchString(raw) && !strings.Contains(raw, ":") && !strings.Contains(raw, "/") {
			return fmt.Errorf("has no port; did you mean %s?", net.JoinHostPort(raw, defaultPort))
		}
		return errors.New("must be host:port")
	}
	if host == "" {
		return errors.New("has no host (want host:port)")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return errors.New("has an invalid port (want 1..65535)")
	}
	return nil
}

// CheckListen checks an address a server listens on: host:port, where an
// empty host means every interface (":8080") and port 0 a free one.
func CheckListen(raw string) error {
	host, port, err := net.SplitHostPort(raw)
	if err != nil {
		if p, perr := strconv.Atoi(raw); perr == nil && p >= 0 && p <= 65535 {
			return fmt.Errorf("must be host:port; did you mean 127.0.0.1:%d (this machine only) or :%d (every interface)?", p, p)
		}
		return errors.New("must be host:port, like 127.0.0.1:8080 (this machine only) or :8080 (every interface)")
	}
	if strings.Contains(host, "/") {
		return errors.New("must be host:port, not a URL")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return errors.New("has an invalid port (want 0..65535; 0 picks a free one)")
	}
	return nil
}
