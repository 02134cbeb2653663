package mqttcmd

import (
	"net/url"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/model"
)

// Defaults applied by New.
const (
	// DefaultTopic is the command topic when none is configured.
	DefaultTopic = "weir/_commands/write"
	// DefaultConnectTimeout bounds one connection attempt.
	DefaultConnectTimeout = 10 * time.Second
)

// Config is the `write_commands:` block: an MQTT 3.1.1 subscription on
// which tools send write commands to the write gate.
type Config struct {
	// URL of the broker: tcp:// or mqtt:// (plain), ssl://, tls:// or
	// mqtts:// (TLS).
	URL string `yaml:"url"`
	// ClientID is required: two clients sharing one throw each other off.
	ClientID string         `yaml:"client_id"`
	Username string         `yaml:"username"`
	Password conf.Secret    `yaml:"password"`
	TLS      tlsconf.Config `yaml:"tls"`
	// Topic to subscribe; default weir/_commands/write. Results are
	// published on <topic>/result.
	Topic string `yaml:"topic"`
	// ConnectTimeout bounds one connection attempt; default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// setDefaults fills the zero values that have a default.
func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
}

// Validate checks the block as written; it does no I/O.
func (c *Config) Validate() error {
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
