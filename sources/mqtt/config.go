package mqtt

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
)

// SampleConfig is a complete, valid example of the source's `mqtt:` block,
// shown by the CLI and checked by the tests.
//
//go:embed sample.yaml
var SampleConfig string

// Protocol versions and payload formats accepted in the configuration.
const (
	Version5   = mqttclient.Version5
	Version311 = mqttclient.Version311

	FormatJSON = "json"
	FormatWeir = "weir"
	FormatRaw  = "raw"
)

// Timestamp units of the json format.
const (
	UnitMillis  = "ms"
	UnitSeconds = "s"
	UnitNanos   = "ns"
	UnitRFC3339 = "rfc3339"
)

// Defaults, applied by setDefaults.
const (
	DefaultKeepAlive       = mqttclient.DefaultKeepAlive
	DefaultConnectTimeout  = mqttclient.DefaultConnectTimeout
	DefaultSessionExpiry   = 10 * time.Minute
	DefaultMaxPayload      = 1 << 20
	DefaultRebirthInterval = 10 * time.Second
	DefaultSparkplugPrefix = "spBv1.0"
	DefaultPathTemplate    = "{topic}"
	// maxSessionExpiry is the largest MQTT 5 session expiry below "never
	// expires" (0xFFFFFFFF seconds).
	maxSessionExpiry = (1<<32 - 2) * time.Second
)

// Config is the `mqtt:` block of a source: the broker, what to subscribe to
// and how to turn messages into samples.
type Config struct {
	// Broker is the connection: url, client_id (required: a persistent
	// session is found again by its client id), protocol_version ("5" by
	// default or "3.1.1"), username, password, tls, keep_alive and
	// connect_timeout.
	mqttclient.Broker `yaml:",inline"`
	// CleanStart discards the broker-side session on every connect. Default
	// false, so that QoS 1 messages published while the connection is down
	// are queued by the broker and delivered on reconnect; true (forced)
	// when sparkplug is configured, as Sparkplug requires of every client.
	CleanStart *bool `yaml:"clean_start"`
	// SessionExpiry is how long an MQTT 5 broker keeps the session after a
	// disconnect (default 10m). MQTT 3.1.1 brokers keep persistent sessions
	// as long as their own configuration says.
	SessionExpiry time.Duration `yaml:"session_expiry"`
	// MaxPayload refuses larger messages as decode errors (default 1 MiB).
	MaxPayload int `yaml:"max_payload"`

	Subscriptions []SubscriptionConfig `yaml:"subscriptions"`
	// Sparkplug makes the source a Sparkplug B host application; nil
	// disables it.
	Sparkplug *SparkplugConfig `yaml:"sparkplug"`
}

// SubscriptionConfig is one topic filter and how its messages become
// samples.
type SubscriptionConfig struct {
	// Topic is an MQTT topic filter with + and # wildcards, optionally
	// shared ($share/<group>/<filter>).
	Topic string `yaml:"topic"`
	// QoS of the subscription: 0, 1 (default) or 2. A pointer so that an
	// explicit 0 differs from "unset".
	QoS *int `yaml:"qos"`
	// StripPrefix is removed from the topic before the path template sees
	// it.
	StripPrefix string `yaml:"strip_prefix"`
	// Path is the tag path template: literal text with {topic} (the whole
	// topic after strip_prefix), {N} (its level N, 0-based) and {N+}
	// (levels N to the end). Default "{topic}".
	Path string `yaml:"path"`
	// Format is json (default), weir or raw.
	Format string `yaml:"format"`
	// JSON applies to format json.
	JSON JSONConfig `yaml:"json"`
}

// JSONConfig says where value and timestamp sit in a JSON payload.
type JSONConfig struct {
	// Value selects the value ("$.data.value"); default "$" (the whole
	// payload is the value).
	Value string `yaml:"value"`
	// Timestamp selects the source timestamp; empty means arrival time.
	Timestamp string `yaml:"timestamp"`
	// TimestampUnit is ms (default), s, ns or rfc3339.
	TimestampUnit string `yaml:"timestamp_unit"`
	// Fields emit several tags from one message, each at
	// "<path>/<name>", instead of the single value.
	Fields []FieldConfig `yaml:"fields"`
}

// FieldConfig is one tag taken from a JSON payload.
type FieldConfig struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// SparkplugConfig makes the source a Sparkplug B 3.0 host application.
type SparkplugConfig struct {
	// GroupIDs are subscribed as spBv1.0/<group>/#; "+" subscribes to all
	// groups (spBv1.0/#).
	GroupIDs []string `yaml:"group_ids"`
	// HostID names the STATE topic spBv1.0/STATE/<host_id>. Required when
	// publish_state is true.
	HostID string `yaml:"host_id"`
	// PublishState publishes the host's STATE (birth, and death as the
	// will), which edge nodes with this primary host wait for.
	PublishState bool `yaml:"publish_state"`
	// PathPrefix is the first level(s) of every Sparkplug tag path
	// (default "spBv1.0"); "" is allowed.
	PathPrefix *string `yaml:"path_prefix"`
	// RebirthInterval is the shortest time between two rebirth requests to
	// one edge node (default 10s).
	RebirthInterval time.Duration `yaml:"rebirth_interval"`
	// IncludeControlMetrics also emits bdSeq, Node Control/* and Device
	// Control/* metrics as tags.
	IncludeControlMetrics bool `yaml:"include_control_metrics"`
	// QoS of the namespace subscriptions (default 0, as Sparkplug data is
	// published at QoS 0; 1 also catches QoS 1 NDEATH wills reliably).
	QoS *int `yaml:"qos"`
}

// brokerDefaults are the source's choices for the shared connection keys:
// MQTT 5 and a required client_id.
var brokerDefaults = mqttclient.Defaults{ProtocolVersion: Version5}

// setDefaults fills every unset key; it is the one place defaults live.
func (c *Config) setDefaults() {
	c.Broker.SetDefaults(brokerDefaults)
	if c.CleanStart == nil {
		clean := c.Sparkplug != nil
		c.CleanStart = &clean
	}
	if c.SessionExpiry == 0 {
		c.SessionExpiry = DefaultSessionExpiry
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	for i := range c.Subscriptions {
		s := &c.Subscriptions[i]
		if s.QoS == nil {
			q := 1
			s.QoS = &q
		}
		if s.Path == "" {
			s.Path = DefaultPathTemplate
		}
		if s.Format == "" {
			s.Format = FormatJSON
		}
		if s.JSON.Value == "" {
			s.JSON.Value = "$"
		}
		if s.JSON.TimestampUnit == "" {
			s.JSON.TimestampUnit = UnitMillis
		}
	}
	if sp := c.Sparkplug; sp != nil {
		if sp.PathPrefix == nil {
			p := DefaultSparkplugPrefix
			sp.PathPrefix = &p
		}
		if sp.RebirthInterval == 0 {
			sp.RebirthInterval = DefaultRebirthInterval
		}
		if sp.QoS == nil {
			q := 0
			sp.QoS = &q
		}
	}
}

// Validate checks the block as written (no I/O) and reports every problem
// at its key path.
func (c *Config) Validate() error {
	var errs conf.Errors
	errs.Add(c.Broker.Validate(brokerDefaults))
	if c.SessionExpiry < 0 || c.SessionExpiry > maxSessionExpiry {
		errs.Addf("session_expiry", "must be between 0 and %s", maxSessionExpiry)
	}
	if c.MaxPayload < 0 {
		errs.Addf("max_payload", "must not be negative")
	}
	if c.Sparkplug != nil && c.CleanStart != nil && !*c.CleanStart {
		errs.Addf("clean_start", "must be true with sparkplug: Sparkplug 3.0 requires every client to connect with a clean session")
	}
	if len(c.Subscriptions) == 0 && c.Sparkplug == nil {
		errs.Addf("subscriptions", "at least one subscription or a sparkplug block is required")
	}
	for i := range c.Subscriptions {
		errs.AddPrefixed(conf.Index("subscriptions", i), c.Subscriptions[i].validate(c.Sparkplug != nil))
	}
	if c.Sparkplug != nil {
		errs.AddPrefixed("sparkplug", c.Sparkplug.validate())
	}
	return errs.Err()
}

func (s *SubscriptionConfig) validate(sparkplug bool) error {
	var errs conf.Errors
	filter, err := parseFilter(s.Topic)
	if err != nil {
		errs.Add(&conf.FieldError{Path: "topic", Err: err})
	} else if sparkplug && strings.HasPrefix(filter, "spBv1.0/") {
		errs.Addf("topic", "the Sparkplug namespace is subscribed by the sparkplug block; remove this subscription")
	}
	if s.QoS != nil && (*s.QoS < 0 || *s.QoS > 2) {
		errs.Addf("qos", "%d is not supported (use 0, 1 or 2)", *s.QoS)
	}
	if s.StripPrefix != "" && err == nil && !prefixCanMatch(filter, s.StripPrefix) {
		errs.Addf("strip_prefix", "%q can never be a prefix of topics matching %q", s.StripPrefix, filter)
	}
	if s.Path != "" {
		if _, perr := parseTemplate(s.Path); perr != nil {
			errs.Add(&conf.FieldError{Path: "path", Err: perr})
		}
	}
	switch s.Format {
	case "", FormatJSON:
		errs.AddPrefixed("json", s.JSON.validate())
	case FormatWeir, FormatRaw:
		if s.JSON.Value != "" || s.JSON.Timestamp != "" || s.JSON.TimestampUnit != "" || len(s.JSON.Fields) > 0 {
			errs.Addf("json", "applies only to format json, not %s", s.Format)
		}
	default:
		errs.Addf("format", "%q is not supported (use json, weir or raw)", s.Format)
	}
	return errs.Err()
}

func (j *JSONConfig) validate() error {
	var errs conf.Errors
	if j.Value != "" {
		if _, err := parseSelector(j.Value); err != nil {
			errs.Add(&conf.FieldError{Path: "value", Err: err})
		}
	}
	if j.Timestamp != "" {
		if _, err := parseSelector(j.Timestamp); err != nil {
			errs.Add(&conf.FieldError{Path: "timestamp", Err: err})
		}
	}
	switch j.TimestampUnit {
	case "", UnitMillis, UnitSeconds, UnitNanos, UnitRFC3339:
	default:
		errs.Addf("timestamp_unit", "%q is not supported (use ms, s, ns or rfc3339)", j.TimestampUnit)
	}
	if len(j.Fields) > 0 && j.Value != "" {
		errs.Addf("value", "give either value or fields, not both")
	}
	names := map[string]bool{}
	for i, f := range j.Fields {
		at := conf.Index("fields", i)
		switch {
		case f.Name == "":
			errs.Addf(at+".name", "is required")
		case model.ValidatePath(f.Name) != nil:
			errs.Addf(at+".name", "is not a valid tag path suffix: %v", model.ValidatePath(f.Name))
		case names[f.Name]:
			errs.Addf(at+".name", "%q is used twice", f.Name)
		}
		names[f.Name] = true
		if f.Value == "" {
			errs.Addf(at+".value", "is required")
		} else if _, err := parseSelector(f.Value); err != nil {
			errs.Add(&conf.FieldError{Path: at + ".value", Err: err})
		}
	}
	return errs.Err()
}

func (s *SparkplugConfig) validate() error {
	var errs conf.Errors
	if len(s.GroupIDs) == 0 {
		errs.Addf("group_ids", "at least one group id is required (\"+\" for all groups)")
	}
	seen := map[string]bool{}
	for i, g := range s.GroupIDs {
		if g == "+" {
			continue
		}
		if err := validateID(g); err != nil {
			errs.Add(&conf.FieldError{Path: conf.Index("group_ids", i), Err: err})
		} else if seen[g] {
			errs.Addf(conf.Index("group_ids", i), "%q is listed twice", g)
		}
		seen[g] = true
	}
	if s.PublishState && s.HostID == "" {
		errs.Addf("host_id", "is required when publish_state is true")
	}
	if s.HostID != "" {
		if err := validateID(s.HostID); err != nil {
			errs.Add(&conf.FieldError{Path: "host_id", Err: err})
		}
	}
	if s.PathPrefix != nil && *s.PathPrefix != "" {
		if err := model.ValidatePath(*s.PathPrefix); err != nil {
			errs.Add(&conf.FieldError{Path: "path_prefix", Err: err})
		}
	}
	if s.RebirthInterval < 0 {
		errs.Addf("rebirth_interval", "must not be negative")
	}
	if s.QoS != nil && (*s.QoS < 0 || *s.QoS > 1) {
		errs.Addf("qos", "%d is not supported (use 0 or 1)", *s.QoS)
	}
	return errs.Err()
}

// validateID checks a Sparkplug group, edge node or host id: UTF-8 without
// '+', '/' or '#' (Sparkplug 3.0, topic namespace).
func validateID(id string) error {
	switch {
	case id == "":
		return errors.New("is empty")
	case strings.ContainsAny(id, "+/#"):
		return fmt.Errorf("%q must not contain '+', '/' or '#'", id)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] == 0x7f {
			return fmt.Errorf("%q contains a control character", id)
		}
	}
	return nil
}
