package kafka

import (
	"strings"

	"github.com/weir-edge/weir/internal/conf"
)

// Transports describes the connection to the brokers for the
// insecure-transport rule (conf.Transport): SASL credentials cross the
// network in clear (PLAIN) or open to an offline guess (SCRAM) unless TLS
// is on. The cluster counts as loopback only when every broker is.
func (c *Config) Transports() []conf.Transport {
	if len(c.Brokers) == 0 {
		return nil
	}
	host := conf.HostOf(c.Brokers[0])
	for _, b := range c.Brokers {
		if h := conf.HostOf(b); !conf.IsLoopback(h) {
			host = h
			break
		}
	}
	t := conf.Transport{
		Peer:          "brokers " + strings.Join(c.Brokers, ", "),
		Host:          host,
		Secure:        c.TLS.Enabled || c.TLS.CAFile != "" || c.TLS.CertFile != "",
		Fix:           "set tls.enabled: true",
		AllowInsecure: c.AllowInsecure,
	}
	if c.SASL.Mechanism != "" || c.SASL.Password.IsSet() {
		t.Credentials = "sasl"
	}
	if c.TLS.InsecureSkipVerify {
		t.SkipVerify = "tls.insecure_skip_verify"
	}
	return []conf.Transport{t}
}

var _ conf.Transporter = (*Config)(nil)
