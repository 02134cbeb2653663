package nats

import (
	"net/url"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
)

// Transports describes the connection to the servers for the
// insecure-transport rule (conf.Transport): a password or token is sent in
// the CONNECT line, in clear unless TLS is on (tls.enabled or a tls://
// URL, which turns it on for every server, as Connect does). A creds file
// is not counted: its nkey signs the server's nonce and never leaves the
// machine. The cluster counts as loopback only when every server is.
func (c *Config) Transports() []conf.Transport {
	servers := c.servers()
	if len(servers) == 0 {
		return nil
	}
	secure := c.TLS.Enabled
	host := ""
	for i, s := range servers {
		u, err := url.Parse(s)
		if err != nil {
			return nil // Validate reports it
		}
		secure = secure || u.Scheme == "tls"
		if h := u.Hostname(); i == 0 || (conf.IsLoopback(host) && !conf.IsLoopback(h)) {
			host = h
		}
	}
	t := conf.Transport{
		Peer:          "server " + strings.Join(servers, ", "),
		Host:          host,
		Secure:        secure,
		Fix:           "use a tls:// url",
		AllowInsecure: c.AllowInsecure,
	}
	switch {
	case c.Password.IsSet():
		t.Credentials = "password"
	case c.Token.IsSet():
		t.Credentials = "token"
	}
	if c.TLS.InsecureSkipVerify {
		t.SkipVerify = "tls.insecure_skip_verify"
	}
	return []conf.Transport{t}
}

var _ conf.Transporter = (*Config)(nil)
