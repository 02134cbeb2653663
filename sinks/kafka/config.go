package kafka

import (
	_ "embed"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
)

// SampleConfig is a complete example of the `kafka:` block, shown by the CLI.
//
//go:embed sample.yaml
var SampleConfig string

// Modes, SASL mechanisms and compression codecs accepted in the
// configuration.
const (
	ModeSample = "sample"
	ModeBatch  = "batch"

	MechanismPlain       = "plain"
	MechanismScramSHA256 = "scram-sha-256"
	MechanismScramSHA512 = "scram-sha-512"
)

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// Defaults, applied by setDefaults.
const (
	DefaultClientID           = "weir"
	DefaultCompression        = "none"
	DefaultLinger             = 5 * time.Millisecond
	DefaultMaxBufferedRecords = 10000
	DefaultProduceTimeout     = 30 * time.Second
	DefaultConnectTimeout     = 10 * time.Second
)

// Config is the `kafka:` block of a sink.
type Config struct {
	// Brokers are the bootstrap brokers, host:port each.
	Brokers []string `yaml:"brokers"`
	// Topic receives every record.
	Topic string `yaml:"topic"`
	// CreateTopic creates Topic at Connect when it does not exist, with
	// Partitions and ReplicationFactor (0: the broker's defaults).
	CreateTopic       bool `yaml:"create_topic"`
	Partitions        int  `yaml:"partitions"`
	ReplicationFactor int  `yaml:"replication_factor"`
	// Mode is "sample" (default; one record per sample keyed by tag path)
	// or "batch" (one record per asset per Write keyed by asset path).
	Mode string `yaml:"mode"`
	// ClientID names the producer on the brokers and fills the weir-node
	// header of every record (default node.id, or "weir" without one).
	ClientID string         `yaml:"client_id"`
	TLS      tlsconf.Config `yaml:"tls"`
	SASL     SASL           `yaml:"sasl"`
	// Compression of record batches: none (default), gzip, snappy, lz4,
	// zstd.
	Compression string `yaml:"compression"`
	// Linger is how long a partition waits for more records before a
	// request is sent while a Write enqueues its records (default 5ms);
	// each Write flushes at its end, so it adds no latency.
	Linger time.Duration `yaml:"linger"`
	// MaxBufferedRecords bounds the records the client holds unconfirmed
	// (default 10000); Write blocks while it is reached.
	MaxBufferedRecords int `yaml:"max_buffered_records"`
	// ProduceTimeout bounds how long a record may wait for the brokers'
	// acknowledgement, retries included (default 30s). After it, Write
	// reports the brokers unreachable.
	ProduceTimeout time.Duration `yaml:"produce_timeout"`
	// ConnectTimeout bounds Connect's metadata (and topic creation)
	// round trip (default 10s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// AllowInsecure accepts SASL credentials over plaintext to brokers on
	// other machines (warned at every start); without it that is an error.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// SASL is the `sasl:` block. An empty mechanism means no SASL.
type SASL struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512.
	Mechanism string      `yaml:"mechanism"`
	Username  string      `yaml:"username"`
	Password  conf.Secret `yaml:"password"`
}

// setDefaults fills every unset key. It is the only place defaults live.
func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeSample
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = DefaultMaxBufferedRecords
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = DefaultProduceTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
}

// Validate checks the block as written; it does no I/O (the password and
// certificates are read at Connect).
func (c *Config) Validate() error {
	var errs conf.Errors
	if len(c.Brokers) == 0 {
		errs.Addf("brokers", "is required")
	}
	for i, b := range c.Brokers {
		if err := validateBroker(b); err != nil {
			errs.Add(&conf.FieldError{Path: conf.Index("brokers", i), Err: err})
		}
	}
	if c.Topic == "" {
		errs.Addf("topic", "is required")
	} else if err := validateTopic(c.Topic); err != nil {
		errs.Add(&conf.FieldError{Path: "topic", Err: err})
	}
	if c.Partitions < 0 {
		errs.Addf("partitions", "must not be negative")
	} else if c.Partitions > 0 && !c.CreateTopic {
		errs.Addf("partitions", "applies only with create_topic")
	}
	if c.ReplicationFactor < 0 || c.ReplicationFactor > 32767 {
		errs.Addf("replication_factor", "must be between 1 and 32767")
	} else if c.ReplicationFactor > 0 && !c.CreateTopic {
		errs.Addf("replication_factor", "applies only with create_topic")
	}
	switch c.Mode {
	case "", ModeSample, ModeBatch:
	default:
		errs.Addf("mode", "%q is not supported (use %q or %q)", c.Mode, ModeSample, ModeBatch)
	}
	errs.AddPrefixed("tls", c.TLS.Validate())
	errs.AddPrefixed("sasl", c.SASL.validate())
	if _, ok := codecs[c.Compression]; !ok && c.Compression != "" {
		errs.Addf("compression", "%q is not supported (none, gzip, snappy, lz4, zstd)", c.Compression)
	}
	if c.Linger < 0 {
		errs.Addf("linger", "must not be negative")
	}
	if c.MaxBufferedRecords < 0 {
		errs.Addf("max_buffered_records", "must not be negative")
	}
	if c.ProduceTimeout < 0 {
		errs.Addf("produce_timeout", "must not be negative")
	} else if c.ProduceTimeout > 0 && c.ProduceTimeout < 100*time.Millisecond {
		errs.Addf("produce_timeout", "must be at least 100ms")
	}
	if c.ConnectTimeout < 0 {
		errs.Addf("connect_timeout", "must not be negative")
	}
	return errs.Err()
}

func (s *SASL) validate() error {
	var errs conf.Errors
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password.IsSet() {
			errs.Addf("mechanism", "is required with username or password")
		}
		return errs.Err()
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
	default:
		errs.Addf("mechanism", "%q is not supported (%s, %s, %s)", s.Mechanism, MechanismPlain, MechanismScramSHA256, MechanismScramSHA512)
	}
	if s.Username == "" {
		errs.Addf("username", "is required")
	}
	if !s.Password.IsSet() {
		errs.Addf("password", "is required")
	}
	errs.AddPrefixed("password", s.Password.Validate())
	return errs.Err()
}

// validateBroker checks a host:port. A URL is refused: Kafka clients take
// bare addresses, and a scheme would end up in the host name.
func validateBroker(b string) error {
	return conf.CheckHostPort(b, "9092")
}

// validateTopic applies Kafka's rules for topic names: 1–249 characters
// of [a-zA-Z0-9._-], not "." or "..".
func validateTopic(t string) error {
	if len(t) > 249 {
		return fmt.Errorf("is longer than 249 characters")
	}
	if t == "." || t == ".." {
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("%q contains %q; use letters, digits, '.', '_' and '-'", t, c)
	}
	return nil
}

// SetNode makes node (node.id, default the host name) the client_id when
// the block leaves it unset; DefaultClientID stays the fallback for a
// Config built without one.
func (c *Config) SetNode(node string) {
	if c.ClientID == "" {
		c.ClientID = node
	}
}
