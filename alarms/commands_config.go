package alarms

import (
	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
)

// DefaultConnectTimeout bounds one connection attempt of the command
// subscriber.
const DefaultConnectTimeout = mqttclient.DefaultConnectTimeout

// CommandsConfig is the `alarms.commands:` block: an MQTT 3.1.1
// subscription on which operators' tools acknowledge and shelve alarms
// with signed commands.
type CommandsConfig struct {
	// Endpoint is the broker: url (tcp:// or mqtt:// plain, ssl://, tls://
	// or mqtts:// TLS), client_id (required: two clients sharing one throw
	// each other off), username, password, tls and connect_timeout (one
	// connection attempt; default 10s).
	mqttclient.Endpoint `yaml:",inline"`
	// Topic to subscribe; default <prefix>/_commands/alarms/ack. Results
	// are published on <topic>/result.
	Topic string `yaml:"topic"`
	// Proof is how each command proves its sender: proof (hmac), max_age
	// and callers [{name, key, role}], inlined in the block. Required.
	Proof cmdproof.Config `yaml:",inline"`
}

// Validate checks the block as written.
func (c *CommandsConfig) Validate() error {
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
