package mqttclient

import (
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttaddr"
)

// Transports describes the broker connection for the insecure-transport
// rule (conf.Transport): the password travels in CONNECT, in clear unless
// the URL scheme (or tls.enabled) asks for TLS. Every MQTT component
// embeds Broker or Endpoint, so this one method covers them all.
func (b *Broker) Transports() []conf.Transport {
	addr, useTLS, err := mqttaddr.Parse(b.URL)
	if err != nil {
		return nil // Validate reports the URL
	}
	t := conf.Transport{
		Peer:          "broker " + addr,
		Host:          conf.HostOf(addr),
		Secure:        useTLS || b.TLS.Enabled,
		Fix:           "use an mqtts:// (or ssl://) url",
		AllowInsecure: b.AllowInsecure,
	}
	if b.Password.IsSet() {
		t.Credentials = "password"
	}
	if b.TLS.InsecureSkipVerify {
		t.SkipVerify = "tls.insecure_skip_verify"
	}
	return []conf.Transport{t}
}

// Transports describes the endpoint's broker connection, as Broker's.
func (e *Endpoint) Transports() []conf.Transport {
	b := e.asWritten()
	b.AllowInsecure = e.AllowInsecure
	return b.Transports()
}

var (
	_ conf.Transporter = (*Broker)(nil)
	_ conf.Transporter = (*Endpoint)(nil)
)
