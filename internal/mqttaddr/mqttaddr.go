// Package mqttaddr parses the broker URLs every MQTT component accepts, so
// the sinks and sources agree on schemes, default ports and what is
// refused.
package mqttaddr

import (
	"errors"
	"net"
	"net/url"

	"github.com/weir-edge/weir/internal/conf"
)

// Schemes are the broker URL schemes, with the hints given for a bare
// address or another protocol's scheme.
var Schemes = conf.Schemes{
	Accepted: []string{"tcp", "mqtt", "ssl", "mqtts", "tls"},
	Plain:    "mqtt", Secure: "mqtts", SecurePort: "8883",
}

// Parse returns the dial address of a broker URL (host:port, the default
// port filled in: 1883 for tcp:// and mqtt://, 8883 for ssl://, mqtts://
// and tls://) and whether the scheme asks for TLS. Credentials in the URL
// are refused: they would end up in logs and status output.
func Parse(raw string) (addr string, useTLS bool, err error) {
	if err := Schemes.Check(raw); err != nil {
		return "", false, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, errors.New("is not a URL")
	}
	port := "1883"
	switch u.Scheme {
	case "ssl", "mqtts", "tls":
		port, useTLS = "8883", true
	}
	if u.User != nil {
		return "", false, errors.New("must not contain credentials; use username and password")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", false, errors.New("has no host")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false, errors.New("must be scheme://host[:port] without path or query")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return net.JoinHostPort(u.Hostname(), port), useTLS, nil
}
