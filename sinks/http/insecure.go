package httpsink

import (
	"net/url"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
)

// Transports describes the connection to the receiver for the
// insecure-transport rule (conf.Transport): the auth_header value travels
// with every request, in clear over http://.
func (c *Config) Transports() []conf.Transport {
	u, err := url.Parse(c.URL)
	if err != nil || c.URL == "" {
		return nil // Validate reports it
	}
	t := conf.Transport{
		Peer:          "receiver " + u.Host,
		Host:          u.Hostname(),
		Secure:        u.Scheme == "https",
		Fix:           "use an https:// url",
		AllowInsecure: c.AllowInsecure,
	}
	if c.AuthHeader.Value.IsSet() {
		t.Credentials = "auth_header"
	}
	if c.TLS.InsecureSkipVerify {
		t.SkipVerify = "tls.insecure_skip_verify"
	}
	return []conf.Transport{t}
}

var _ conf.Transporter = (*Config)(nil)

// redactSecret blanks the credential out of text received from the
// receiver before it is logged: an error page that repeats the request's
// headers must not put the token into the gateway's log.
func redactSecret(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "xxxxx")
}
