package mqttcmd

import (
	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
)

// Defaults applied by New.
const (
	// DefaultTopic is the command topic when none is configured.
	DefaultTopic = "weir/_commands/write"
	// DefaultConnectTimeout bounds one connection attempt.
	DefaultConnectTimeout = mqttclient.DefaultConnectTimeout
)

// Config is the `write_commands:` block: an MQTT 3.1.1 subscription on
// which tools send write commands to the write gate.
type Config struct {
	// Endpoint is the broker: url (tcp:// or mqtt:// plain, ssl://, tls://
	// or mqtts:// TLS), client_id (required: two clients sharing one throw
	// each other off), username, password, tls and connect_timeout (one
	// connection attempt; default 10s).
	mqttclient.Endpoint `yaml:",inline"`
	// Topic to subscribe; default weir/_commands/write. Results are
	// published on <topic>/result.
	Topic string `yaml:"topic"`
	// Proof is how each command proves its sender: proof (hmac), max_age
	// and callers [{name, key, role}], inlined in the block. Required: a
	// command without a valid proof is refused.
	Proof cmdproof.Config `yaml:",inline"`
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
	errs.Add(c.Endpoint.Validate())
	errs.Add(c.Proof.Validate())
	if c.Topic != "" {
		if err := model.ValidatePath(c.Topic); err != nil {
			errs.Add(conf.Errorf("topic", "%w", err))
		}
	}
	return errs.Err()
}
