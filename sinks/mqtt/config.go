package mqtt

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
)

// SampleConfig is a complete example of the `mqtt:` block, shown by the CLI.
//
//go:embed sample.yaml
var SampleConfig string

// Protocol versions and modes accepted in the configuration.
const (
	Version5   = mqttclient.Version5
	Version311 = mqttclient.Version311

	ModeSample = "sample"
	ModeBatch  = "batch"
)

// Defaults, applied by setDefaults.
const (
	DefaultQoS            = 1
	DefaultKeepAlive      = mqttclient.DefaultKeepAlive
	DefaultConnectTimeout = mqttclient.DefaultConnectTimeout
	DefaultMaxInflight    = 64
)

// brokerDefaults are the sink's choices for the shared connection keys:
// MQTT 5; client_id has no default of its own (SetNode gives it node.id).
var brokerDefaults = mqttclient.Defaults{ProtocolVersion: Version5}

// validateDefaults lets Validate accept an unset client_id, which the
// configuration fills with node.id before New; the placeholder is never
// used as a client id.
var validateDefaults = mqttclient.Defaults{ProtocolVersion: Version5, ClientID: "<node.id>"}

// maxTopicLen keeps room under MQTT's 65535-byte topic limit for the tag
// path appended to the prefix (model.MaxPathLen).
const maxTopicLen = 4096

// Config is the `mqtt:` block of a sink.
type Config struct {
	// Broker is the connection: url, client_id (default node.id, itself
	// defaulting to the host name; it also names the default status topic,
	// so two mqtt sinks on one broker each need their own), protocol_version ("5" by default or
	// "3.1.1"), username, password, tls, keep_alive (which also bounds the
	// wait for a PUBACK) and connect_timeout.
	mqttclient.Broker `yaml:",inline"`
	// QoS of data messages: 0 or 1 (default 1). A pointer so that an
	// explicit 0 differs from "unset".
	QoS *int `yaml:"qos"`
	// Retain sets the retain flag on data messages, so that a new
	// subscriber sees each topic's last value at once.
	Retain bool `yaml:"retain"`
	// TopicPrefix is prepended to every data topic ("weir/v1" gives
	// "weir/v1/<tag path>"). It may be empty.
	TopicPrefix string `yaml:"topic_prefix"`
	// Mode is "sample" (default; one message per sample on the tag's topic)
	// or "batch" (one message per asset per Write on the asset's topic).
	Mode string `yaml:"mode"`
	// MaxInflight bounds the QoS 1 messages awaiting PUBACK at once
	// (default 64).
	MaxInflight int `yaml:"max_inflight"`
	// StatusTopic receives "online" (retained) on every connect, "offline"
	// on Close and, as the last will, when the connection drops. Default
	// "<topic_prefix>/_status/<client_id>".
	StatusTopic string `yaml:"status_topic"`
}

// setDefaults fills every unset key. It is the only place defaults live.
func (c *Config) setDefaults() {
	c.Broker.SetDefaults(brokerDefaults)
	if c.QoS == nil {
		q := DefaultQoS
		c.QoS = &q
	}
	if c.Mode == "" {
		c.Mode = ModeSample
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.StatusTopic == "" {
		c.StatusTopic = joinTopic(c.TopicPrefix, "_status/"+c.ClientID)
	}
}

// Validate checks the block as written; it does no I/O (the password and
// certificates are read at Connect).
func (c *Config) Validate() error {
	var errs conf.Errors
	errs.Add(c.Broker.Validate(validateDefaults))
	if c.QoS != nil && *c.QoS != 0 && *c.QoS != 1 {
		errs.Addf("qos", "%d is not supported (use 0 or 1)", *c.QoS)
	}
	if c.TopicPrefix != "" {
		if err := validateTopic(c.TopicPrefix); err != nil {
			errs.Add(&conf.FieldError{Path: "topic_prefix", Err: err})
		}
	}
	switch c.Mode {
	case "", ModeSample, ModeBatch:
	default:
		errs.Addf("mode", "%q is not supported (use %q or %q)", c.Mode, ModeSample, ModeBatch)
	}
	if c.MaxInflight < 0 || c.MaxInflight > 65535 {
		errs.Addf("max_inflight", "must be between 1 and 65535")
	}
	if c.StatusTopic != "" {
		if err := validateTopic(c.StatusTopic); err != nil {
			errs.Add(&conf.FieldError{Path: "status_topic", Err: err})
		}
	} else if c.ClientID != "" {
		if err := validateTopic(joinTopic(c.TopicPrefix, "_status/"+c.ClientID)); err != nil {
			errs.Addf("client_id", "cannot name the default status topic (set status_topic): %v", err)
		}
	}
	return errs.Err()
}

// validateTopic checks a topic name the sink publishes to: UTF-8 (a
// broker disconnects a client that sends anything else: "malformed
// packet"), no wildcards, no empty levels (so no leading or trailing '/'),
// no NUL or control characters, no leading '$' (reserved by brokers),
// bounded length.
func validateTopic(t string) error {
	switch {
	case t == "":
		return errors.New("topic is empty")
	case !utf8.ValidString(t):
		return fmt.Errorf("topic %q is not valid UTF-8", t)
	case len(t) > maxTopicLen:
		return fmt.Errorf("topic is %d bytes long, the limit is %d", len(t), maxTopicLen)
	case t[0] == '$':
		return fmt.Errorf("topic %q starts with '$', which brokers reserve", t)
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '+' || c == '#':
			return fmt.Errorf("topic %q contains the wildcard %q", t, c)
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("topic %q contains a control character at byte %d", t, i)
		case c == '/' && (i == 0 || i == len(t)-1 || t[i-1] == '/'):
			return fmt.Errorf("topic %q has an empty level at byte %d", t, i)
		}
	}
	if strings.TrimSpace(t) != t {
		return fmt.Errorf("topic %q has leading or trailing spaces", t)
	}
	return nil
}

// joinTopic joins a prefix and a suffix with '/', either may be empty.
func joinTopic(prefix, rest string) string {
	switch {
	case prefix == "":
		return rest
	case rest == "":
		return prefix
	}
	return prefix + "/" + rest
}

// SetNode makes node (node.id, default the host name) the client_id when
// the block leaves it unset, so the status topic names the gateway.
func (c *Config) SetNode(node string) {
	if c.ClientID == "" {
		c.ClientID = node
	}
}
