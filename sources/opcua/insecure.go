package opcua

import (
	"net/url"

	"github.com/weir-edge/weir/internal/conf"
)

// Transports describes the session for the insecure-transport rule
// (conf.Transport): with security mode None nothing on the channel is
// signed or encrypted, so a user name and password (and every value read
// or written) are open to the network path. Sign and SignAndEncrypt
// count as secure: the password is then encrypted for the server's
// certificate, which the trust list verifies.
func (c *Config) Transports() []conf.Transport {
	u, err := url.Parse(c.Endpoint)
	if err != nil || c.Endpoint == "" {
		return nil // Validate reports it
	}
	policy, mode := c.SecurityPolicy, c.SecurityMode
	if policy == "" {
		policy = DefaultSecurityPolicy
	}
	if mode == "" {
		mode = "SignAndEncrypt"
		if policy == "None" {
			mode = "None"
		}
	}
	t := conf.Transport{
		Peer:          "server " + u.Host,
		Host:          u.Hostname(),
		Secure:        mode != "None",
		Fix:           "use security_policy Basic256Sha256 with security_mode SignAndEncrypt",
		AllowInsecure: c.AllowInsecure,
	}
	if c.Auth.Type == "username" || c.Auth.Password.IsSet() {
		t.Credentials = "auth.password"
	}
	return []conf.Transport{t}
}

var _ conf.Transporter = (*Config)(nil)
