package mqtt

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttaddr"
	"github.com/weir-edge/weir/internal/tlsconf"
)

// SampleConfig is a complete example of the `mqtt:` block, shown by the CLI.
//
//go:embed sample.yaml
var SampleConfig string

// Protocol versions and modes accepted in the configuration.
const (
	Version5   = "5"
	Version311 = "3.1.1"

	ModeSample = "sample"
	ModeBatch  = "batch"
)

// Defaults, applied by setDefaults.
const (
	DefaultQoS            = 1
	DefaultKeepAlive      = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultMaxInflight    = 64
)

// maxTopicLen keeps room under MQTT's 65535-byte topic limit for the tag
// path appended to the prefix (model.MaxPathLen).
const maxTopicLen = 4096

// Config is the `mqtt:` block of a sink.
type Config struct {
	// URL is the broker: tcp:// or mqtt:// (plain, default port 1883),
	// ssl://, mqtts:// or tls:// (TLS, default port 8883).
	URL string `yaml:"url"`
	// ClientID identifies the session on the broker and names the default
	// status topic. Two gateways must never share one: the broker would
	// disconnect one whenever the other connects.
	ClientID string `yaml:"client_id"`
	// ProtocolVersion is "5" (default) or "3.1.1".
	ProtocolVersion string `yaml:"protocol_version"`
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
	Mode     string      `yaml:"mode"`
	Username string      `yaml:"username"`
	Password conf.Secret `yaml:"password"`
	// TLS settings; TLS is on when the URL scheme is a TLS one.
	TLS tlsconf.Config `yaml:"tls"`
	// KeepAlive is the MQTT keep-alive (whole seconds, default 30s). It also
	// bounds the wait for a PUBACK: a broker that acknowledges nothing for
	// that long is treated as gone.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// ConnectTimeout bounds dialling, TLS and the CONNECT/CONNACK exchange
	// (default 10s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
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
	if c.ProtocolVersion == "" {
		c.ProtocolVersion = Version5
	}
	if c.QoS == nil {
		q := DefaultQoS
		c.QoS = &q
	}
	if c.Mode == "" {
		c.Mode = ModeSample
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
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
	if c.URL == "" {
		errs.Addf("url", "is required")
	} else if _, _, err := parseURL(c.URL); err != nil {
		errs.Add(&conf.FieldError{Path: "url", Err: err})
	} else if c.TLS.Enabled && !isTLSScheme(c.URL) {
		errs.Addf("tls.enabled", "is true but the url scheme is plaintext; use mqtts:// or ssl://")
	}
	if c.ClientID == "" {
		errs.Addf("client_id", "is required")
	} else if len(c.ClientID) > 65535 {
		errs.Addf("client_id", "is longer than 65535 bytes")
	}
	switch c.ProtocolVersion {
	case "", Version5, Version311:
	default:
		errs.Addf("protocol_version", "%q is not supported (use %q or %q)", c.ProtocolVersion, Version5, Version311)
	}
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
	errs.AddPrefixed("password", c.Password.Validate())
	if c.Password.IsSet() && c.Username == "" && c.ProtocolVersion == Version311 {
		errs.Addf("username", "is required with a password in MQTT 3.1.1")
	}
	errs.AddPrefixed("tls", c.TLS.Validate())
	switch {
	case c.KeepAlive < 0:
		errs.Addf("keep_alive", "must not be negative")
	case c.KeepAlive > 0 && c.KeepAlive < time.Second:
		errs.Addf("keep_alive", "must be at least 1s")
	case c.KeepAlive > 65535*time.Second:
		errs.Addf("keep_alive", "must be at most 18h12m15s (65535 s)")
	}
	if c.ConnectTimeout < 0 {
		errs.Addf("connect_timeout", "must not be negative")
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

// parseURL returns the dial address and whether the scheme asks for TLS.
func parseURL(raw string) (addr string, useTLS bool, err error) { return mqttaddr.Parse(raw) }

func isTLSScheme(raw string) bool {
	_, useTLS, err := parseURL(raw)
	return err == nil && useTLS
}

// validateTopic checks a topic name the sink publishes to: no wildcards, no
// empty levels (so no leading or trailing '/'), no NUL or control
// characters, no leading '$' (reserved by brokers), bounded length.
func validateTopic(t string) error {
	switch {
	case t == "":
		return errors.New("topic is empty")
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
