package sparkplug

import (
	_ "embed"
	"path/filepath"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/sparkplugb"
)

// SampleConfig is a complete example of the `sparkplug:` block, shown by
// the CLI.
//
//go:embed sample.yaml
var SampleConfig string

// Protocol versions accepted in the configuration.
const (
	Version311 = mqttclient.Version311
	Version5   = mqttclient.Version5
)

// Defaults, applied by setDefaults.
const (
	DefaultKeepAlive        = mqttclient.DefaultKeepAlive
	DefaultConnectTimeout   = mqttclient.DefaultConnectTimeout
	DefaultMaxInflight      = 64
	DefaultRebirthDebounce  = time.Second
	DefaultMaxMetrics       = 1000
	DefaultDeviceSeparator  = ":"
	DefaultDataDir          = "/var/lib/weir"
	defaultBdSeqSubdir      = "sparkplug"
	maxMetricsPerMessageCap = 1 << 16
)

// Config is the `sparkplug:` block of a sink.
type Config struct {
	// Broker is the connection: url, client_id (default
	// "<group_id>_<edge_node_id>"), protocol_version ("3.1.1" by default,
	// as every Sparkplug 3.0 host must support it, or "5"), username,
	// password, tls, keep_alive (which also bounds the wait for one PUBACK)
	// and connect_timeout (which also bounds SUBSCRIBE and the births).
	mqttclient.Broker `yaml:",inline"`
	// GroupID and EdgeNodeID name this edge node: spBv1.0/<group>/…/<edge>.
	// GroupID is required; EdgeNodeID defaults to node.id (itself
	// defaulting to the host name), which must then be a valid Sparkplug id.
	GroupID    string `yaml:"group_id"`
	EdgeNodeID string `yaml:"edge_node_id"`
	// Device maps tag paths to Sparkplug devices and metric names.
	Device DeviceConfig `yaml:"device"`
	// PrimaryHostID enables STATE gating: no births and no data unless the
	// host application with this id is online. Empty: no gating.
	PrimaryHostID string `yaml:"primary_host_id"`
	// LegacyState follows a pre-3.0 host: STATE on "STATE/<host>" with the
	// payload ONLINE/OFFLINE instead of spBv1.0/STATE/<host> with JSON.
	LegacyState bool `yaml:"legacy_state"`
	// BdSeqFile is where the birth/death sequence number is persisted
	// (fsync'd on every connect). Default
	// <data_dir>/sparkplug/<group_id>_<edge_node_id>.bdseq.
	BdSeqFile string `yaml:"bdseq_file"`
	// MaxInflight bounds QoS 1 messages awaiting PUBACK at once with MQTT
	// 3.1.1 (default 64). MQTT 5 publishes one at a time.
	MaxInflight int `yaml:"max_inflight"`
	// RebirthDebounce is the least time between two births answering
	// rebirth requests (default 1s); requests in between are coalesced.
	RebirthDebounce time.Duration `yaml:"rebirth_debounce"`
	// DataQoS is the MQTT QoS of NDATA/DDATA/DBIRTH/DDEATH/NBIRTH: 0 as the
	// spec requires (default; Write is confirmed when the message is
	// written to the socket), or 1 for broker-confirmed delivery (a spec
	// deviation that most brokers and hosts accept).
	DataQoS int `yaml:"data_qos"`
	// SeqProperty adds the property weir_seq (UInt64, Weir's sample Seq)
	// to every metric in NDATA/DDATA, so consumers can de-duplicate replays.
	// Default true.
	SeqProperty *bool `yaml:"seq_property"`
	// MaxMetricsPerMessage splits a device's samples of one Write into
	// several DATA messages (default 1000).
	MaxMetricsPerMessage int `yaml:"max_metrics_per_message"`
	// ReportByException (default true) is Sparkplug's own model: an
	// NDATA/DDATA carries a metric only when its value or quality changed
	// since the last one published for it; the first value after a birth
	// is always sent. False sends every sample, as a poll produced it.
	// Unchanged samples are still acknowledged (they are delivered: the
	// host already has that value).
	ReportByException *bool `yaml:"report_by_exception"`
	// Commands says whether NCMD/DCMD writes are trusted, and as whom they
	// run (see CommandsConfig). Default: refused.
	Commands CommandsConfig `yaml:"commands"`

	// DataDir is the gateway's data directory, set by the configuration
	// builder from the top-level data_dir (not a key of this block).
	DataDir string `yaml:"-"`
}

// DeviceConfig maps a tag path to (device id, metric name):
//
//  1. strip_prefix and its '/' are removed from the path when present;
//  2. the first `levels` levels (0, the default: all but the last, i.e.
//     the asset path) form the device key, the rest (with its '/') the
//     metric name; a path with no more levels than that is a node metric
//     (NDATA) named by the whole path;
//  3. the device id is map[device key] if present, else the device key
//     with '/' replaced by separator (default ":"), since '/' is forbidden
//     in Sparkplug ids.
type DeviceConfig struct {
	StripPrefix string            `yaml:"strip_prefix"`
	Levels      int               `yaml:"levels"`
	Separator   string            `yaml:"separator"`
	Map         map[string]string `yaml:"map"`
}

// setDefaults fills every unset key. It is the only place defaults live.
func (c *Config) setDefaults() {
	c.Broker.SetDefaults(c.brokerDefaults())
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.RebirthDebounce == 0 {
		c.RebirthDebounce = DefaultRebirthDebounce
	}
	if c.SeqProperty == nil {
		t := true
		c.SeqProperty = &t
	}
	if c.ReportByException == nil {
		t := true
		c.ReportByException = &t
	}
	if c.MaxMetricsPerMessage == 0 {
		c.MaxMetricsPerMessage = DefaultMaxMetrics
	}
	if c.Device.Separator == "" {
		c.Device.Separator = DefaultDeviceSeparator
	}
	if c.BdSeqFile == "" {
		dir := c.DataDir
		if dir == "" {
			dir = DefaultDataDir
		}
		c.BdSeqFile = filepath.Join(dir, defaultBdSeqSubdir, fileSafe(c.GroupID)+"_"+fileSafe(c.EdgeNodeID)+".bdseq")
	}
}

// brokerDefaults are the sink's choices for the shared connection keys.
func (c *Config) brokerDefaults() mqttclient.Defaults {
	return mqttclient.Defaults{ProtocolVersion: Version311, ClientID: c.GroupID + "_" + c.EdgeNodeID}
}

// fileSafe keeps letters, digits, '-', '_' and '.'; other bytes become '_'.
func fileSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Validate checks the block as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	errs.Add(c.Broker.Validate(c.brokerDefaults()))
	for _, id := range []struct{ key, v string }{{"group_id", c.GroupID}, {"edge_node_id", c.EdgeNodeID}} {
		if id.v == "" && id.key == "edge_node_id" {
			continue // SetNode gives it node.id; New refuses it still empty
		}
		if id.v == "" {
			errs.Addf(id.key, "is required")
		} else if err := sparkplugb.ValidateID(id.v); err != nil {
			errs.Add(&conf.FieldError{Path: id.key, Err: err})
		}
	}
	if c.PrimaryHostID != "" {
		if err := sparkplugb.ValidateID(c.PrimaryHostID); err != nil {
			errs.Add(&conf.FieldError{Path: "primary_host_id", Err: err})
		}
	} else if c.LegacyState {
		errs.Addf("legacy_state", "needs primary_host_id")
	}
	d := c.Device
	if d.Levels < 0 {
		errs.Addf("device.levels", "must not be negative")
	}
	if strings.ContainsAny(d.Separator, "+/#\x00") {
		errs.Addf("device.separator", "%q contains a character forbidden in Sparkplug ids (+ / #)", d.Separator)
	}
	if strings.HasPrefix(d.StripPrefix, "/") || strings.HasSuffix(d.StripPrefix, "/") {
		errs.Addf("device.strip_prefix", "must not start or end with '/'")
	}
	for k, v := range d.Map {
		if err := sparkplugb.ValidateID(v); err != nil {
			errs.Add(&conf.FieldError{Path: "device.map." + k, Err: err})
		}
	}
	if c.MaxInflight < 0 || c.MaxInflight > 65535 {
		errs.Addf("max_inflight", "must be between 1 and 65535")
	}
	if c.RebirthDebounce < 0 {
		errs.Addf("rebirth_debounce", "must not be negative")
	}
	if c.DataQoS != 0 && c.DataQoS != 1 {
		errs.Addf("data_qos", "%d is not supported (use 0 or 1)", c.DataQoS)
	}
	errs.AddPrefixed("commands", c.Commands.validate(c.PrimaryHostID))
	if c.MaxMetricsPerMessage < 0 || c.MaxMetricsPerMessage > maxMetricsPerMessageCap {
		errs.Addf("max_metrics_per_message", "must be between 1 and %d", maxMetricsPerMessageCap)
	}
	return errs.Err()
}

// SetNode makes node (node.id, default the host name) the edge_node_id
// when the block leaves it unset.
func (c *Config) SetNode(node string) {
	if c.EdgeNodeID == "" {
		c.EdgeNodeID = node
	}
}
