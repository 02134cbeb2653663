package alarms

import (
	"net/url"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/model"
)

// DefaultConnectTimeout bounds one connection attempt of the command
// subscriber.
const DefaultConnectTimeout = 10 * time.Second

// CommandsConfig is the `alarms.commands:` block: an MQTT 3.1.1
// subscription on which operators' tools acknowledge alarms.
type CommandsConfig struct {
	// URL of the broker: tcp:// or mqtt:// (plain), ssl://, tls:// or
	// mqtts:// (TLS).
	URL string `yaml:"url"`
	// ClientID is required: two clients sharing one throw each other off.
	ClientID string         `yaml:"client_id"`
	Username string         `yaml:"username"`
	Password conf.Secret    `yaml:"password"`
	TLS      tlsconf.Config `yaml:"tls"`
	// Topic to subscribe; default <prefix>/_commands/alarms/ack.
	Topic string `yaml:"topic"`
	// ConnectTimeout bounds one connection attempt; default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// Validate checks the block as written.
func (c *CommandsConfig) Validate() error {
	var errs conf.Errors
	if c.URL == "" {
		errs.Addf("url", "is required")
	} else if u, err := url.Parse(c.URL); err != nil {
		errs.Add(conf.Errorf("url", "%w", err))
	} else {
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts":
		default:
			errs.Addf("url", "scheme %q is not tcp, mqtt, ssl, tls or mqtts", u.Scheme)
		}
		if u.Host == "" {
			errs.Addf("url", "has no host")
		}
	}
	if c.ClientID == "" {
		errs.Addf("client_id", "is required")
	}
	if c.Password.IsSet() {
		errs.AddPrefixed("password", c.Password.Validate())
	}
	errs.AddPrefixed("tls", c.TLS.Validate())
	if c.Topic != "" {
		if err := model.ValidatePath(c.Topic); err != nil {
			errs.Add(conf.Errorf("topic", "%w", err))
		}
	}
	if c.ConnectTimeout < 0 {
		errs.Addf("connect_timeout", "must not be negative")
	}
	return errs.Err()
}
