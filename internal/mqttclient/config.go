package mqttclient

import (
	_ "embed"
	"fmt"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttaddr"
	"github.com/weir-edge/weir/internal/tlsconf"
)

// SampleConfig shows the shared keys, as they appear inside a component's
// block.
//
//go:embed sample.yaml
var SampleConfig string

// Protocol versions accepted in protocol_version.
const (
	Version5   = "5"
	Version311 = "3.1.1"
)

// Defaults of the shared keys, applied by SetDefaults.
const (
	DefaultKeepAlive      = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
)

// Broker is the broker connection every MQTT component configures the same
// way. Components embed it inline (`yaml:",inline"`), so its keys sit beside
// their own and read as before.
type Broker struct {
	// URL is the broker: tcp:// or mqtt:// (plain, default port 1883),
	// ssl://, mqtts:// or tls:// (TLS, default port 8883).
	URL string `yaml:"url"`
	// ClientID names the session on the broker. Two clients sharing one
	// throw each other off.
	ClientID string `yaml:"client_id"`
	// ProtocolVersion is "5" or "3.1.1"; the default is the component's.
	ProtocolVersion string      `yaml:"protocol_version"`
	Username        string      `yaml:"username"`
	Password        conf.Secret `yaml:"password"`
	// TLS settings; TLS is on when the URL scheme is a TLS one.
	TLS tlsconf.Config `yaml:"tls"`
	// KeepAlive is the MQTT keep-alive (whole seconds, default 30s). It
	// also bounds the wait for each acknowledgement: a broker that
	// acknowledges nothing for that long is treated as gone.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// ConnectTimeout bounds dialling, TLS and the CONNECT/CONNACK exchange
	// (default 10s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// AllowInsecure accepts a password over a plaintext URL to another
	// machine (warned at every start); without it that is an error.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// Endpoint is a Broker without protocol_version and keep_alive, for the
// command subscribers that speak MQTT 3.1.1 with the default keep-alive.
// It has its own type so that those blocks accept no keys they never had.
type Endpoint struct {
	URL            string         `yaml:"url"`
	ClientID       string         `yaml:"client_id"`
	Username       string         `yaml:"username"`
	Password       conf.Secret    `yaml:"password"`
	TLS            tlsconf.Config `yaml:"tls"`
	ConnectTimeout time.Duration  `yaml:"connect_timeout"`
	AllowInsecure  bool           `yaml:"allow_insecure"` // see Broker
}

// Broker is e as a Broker speaking MQTT 3.1.1, defaults applied.
func (e *Endpoint) Broker() Broker {
	b := e.asWritten()
	b.SetDefaults(Defaults{ProtocolVersion: Version311})
	return b
}

func (e *Endpoint) asWritten() Broker {
	return Broker{
		URL: e.URL, ClientID: e.ClientID, ProtocolVersion: Version311,
		Username: e.Username, Password: e.Password, TLS: e.TLS, ConnectTimeout: e.ConnectTimeout,
	}
}

// Validate checks the block as written; it does no I/O.
func (e *Endpoint) Validate() error {
	b := e.asWritten()
	return b.Validate(Defaults{ProtocolVersion: Version311})
}

// Defaults are the component's choices for unset keys.
type Defaults struct {
	// ProtocolVersion when protocol_version is unset; "" means Version5.
	ProtocolVersion string
	// ClientID when client_id is unset; "" makes client_id required.
	ClientID string
}

func (d Defaults) version() string {
	if d.ProtocolVersion == "" {
		return Version5
	}
	return d.ProtocolVersion
}

// SetDefaults fills every unset key.
func (b *Broker) SetDefaults(d Defaults) {
	if b.ProtocolVersion == "" {
		b.ProtocolVersion = d.version()
	}
	if b.ClientID == "" {
		b.ClientID = d.ClientID
	}
	if b.KeepAlive == 0 {
		b.KeepAlive = DefaultKeepAlive
	}
	if b.ConnectTimeout == 0 {
		b.ConnectTimeout = DefaultConnectTimeout
	}
}

// Validate checks the keys as written (no I/O: the password and the
// certificates are read by Options) and reports each problem at its key.
func (b *Broker) Validate(d Defaults) error {
	var errs conf.Errors
	if b.URL == "" {
		errs.Addf("url", "is required")
	} else if _, useTLS, err := mqttaddr.Parse(b.URL); err != nil {
		errs.Add(&conf.FieldError{Path: "url", Err: err})
	} else if b.TLS.Enabled && !useTLS {
		errs.Addf("tls.enabled", "is true but the url scheme is plaintext; use mqtts:// or ssl://")
	}
	if b.ClientID == "" && d.ClientID == "" {
		errs.Addf("client_id", "is required")
	} else if len(b.ClientID) > 65535 {
		errs.Addf("client_id", "is longer than 65535 bytes")
	}
	version := b.ProtocolVersion
	switch def := d.version(); version {
	case "":
		version = def
	case Version5, Version311:
	default:
		other := Version311
		if def == Version311 {
			other = Version5
		}
		errs.Addf("protocol_version", "%q is not supported (use %q or %q)", version, def, other)
	}
	errs.AddPrefixed("password", b.Password.Validate())
	if b.Password.IsSet() && b.Username == "" && version == Version311 {
		errs.Addf("username", "is required with a password in MQTT 3.1.1")
	}
	errs.AddPrefixed("tls", b.TLS.Validate())
	switch {
	case b.KeepAlive < 0:
		errs.Addf("keep_alive", "must not be negative")
	case b.KeepAlive > 0 && b.KeepAlive < time.Second:
		errs.Addf("keep_alive", "must be at least 1s")
	case b.KeepAlive > 65535*time.Second:
		errs.Addf("keep_alive", "must be at most 18h12m15s (65535 s)")
	}
	if b.ConnectTimeout < 0 {
		errs.Addf("connect_timeout", "must not be negative")
	}
	return errs.Err()
}

// Addr is the dial address (host:port) of a validated URL, for logs and
// errors.
func (b *Broker) Addr() string {
	addr, _, _ := mqttaddr.Parse(b.URL)
	return addr
}

// Options reads the password and the certificates and returns what Dial
// needs; the caller adds the will, the handler and session settings. It
// does I/O: call it at connect time, so that rotated credentials apply on
// the next connection. Call it on a validated Broker with defaults applied.
func (b *Broker) Options() (Options, error) {
	addr, useTLS, err := mqttaddr.Parse(b.URL)
	if err != nil {
		return Options{}, fmt.Errorf("url: %w", err)
	}
	o := Options{
		Version:      b.ProtocolVersion,
		Addr:         addr,
		ClientID:     b.ClientID,
		Username:     b.Username,
		KeepAlive:    b.KeepAlive,
		AckTimeout:   b.KeepAlive,
		WriteTimeout: b.ConnectTimeout,
	}
	if b.Password.IsSet() {
		pw, err := b.Password.Resolve() // errors name the source, never the value
		if err != nil {
			return Options{}, fmt.Errorf("password: %w", err)
		}
		o.Password = pw
	}
	if useTLS || b.TLS.Enabled {
		tc, err := b.TLS.Load()
		if err != nil {
			return Options{}, err // already says "tls: …"
		}
		o.TLS = tc
	}
	return o, nil
}
