package nats

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
)

// SampleConfig is a complete example of the `nats:` block, shown by the CLI.
//
//go:embed sample.yaml
var SampleConfig string

// Modes accepted in the configuration.
const (
	ModeSample = "sample"
	ModeBatch  = "batch"
)

// Defaults, applied by setDefaults.
const (
	DefaultClientID       = "weir"
	DefaultConnectTimeout = 10 * time.Second
	DefaultAckTimeout     = 10 * time.Second
	DefaultMaxPending     = 256
)

// Limits of names the sink builds. NATS servers refuse control lines longer
// than 4096 bytes by default; a PUB line carries the subject and a reply
// subject, so subjects stay well below that.
const (
	maxPrefixLen   = 512
	maxSubjectLen  = 3584
	maxStreamName  = 255
	maxClientIDLen = 256
	maxMaxPending  = 65536
)

// Config is the `nats:` block of a sink.
type Config struct {
	// URL is one server, nats://host[:port] (default port 4222) or
	// tls://host[:port]. Give either url or urls.
	URL string `yaml:"url"`
	// URLs lists the servers of a cluster; Connect tries them in random
	// order.
	URLs []string `yaml:"urls"`
	// ClientID names the connection on the server and starts every message
	// id (default node.id, or "weir" without one). Give each gateway its
	// own.
	ClientID string `yaml:"client_id"`
	// SubjectPrefix starts every subject: "<prefix>.<tag path with '/'
	// replaced by '.'>". Required; tokens separated by '.', no wildcards,
	// no spaces, not starting with '$'.
	SubjectPrefix string `yaml:"subject_prefix"`
	// Stream is the JetStream stream expected to store the messages. When
	// set, Connect checks it exists and every publish asks the server to
	// confirm it landed there.
	Stream string `yaml:"stream"`
	// CreateStream creates Stream at Connect when it does not exist, with
	// subjects "<prefix>" and "<prefix>.>" and file storage. An existing
	// stream is never modified.
	CreateStream bool `yaml:"create_stream"`
	// Mode is "sample" (default; one message per sample on the tag's
	// subject) or "batch" (one message per asset per Write on the asset's
	// subject).
	Mode string `yaml:"mode"`
	// TLS settings; TLS is on when enabled or the URL scheme is tls://.
	TLS tlsconf.Config `yaml:"tls"`
	// CredsFile is a NATS .creds file (user JWT and nkey seed), read at
	// Connect.
	CredsFile string      `yaml:"creds_file"`
	Username  string      `yaml:"username"`
	Password  conf.Secret `yaml:"password"`
	Token     conf.Secret `yaml:"token"`
	// ConnectTimeout bounds dialling, TLS and the handshake (default 10s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// AckTimeout bounds the wait for each PubAck (default 10s).
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// MaxPending bounds the asynchronous publishes awaiting a PubAck at
	// once (default 256).
	MaxPending int `yaml:"max_pending"`
	// AllowInsecure accepts a password or token over plaintext nats:// to
	// another machine (warned at every start); without it that is an error.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// setDefaults fills every unset key. It is the only place defaults live.
func (c *Config) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Mode == "" {
		c.Mode = ModeSample
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
}

// servers returns the configured server URLs.
func (c *Config) servers() []string {
	if c.URL != "" {
		return []string{c.URL}
	}
	return c.URLs
}

// Validate checks the block as written; it does no I/O (secrets, the creds
// file and certificates are read at Connect).
func (c *Config) Validate() error {
	var errs conf.Errors
	switch {
	case c.URL == "" && len(c.URLs) == 0:
		errs.Addf("url", "is required (or urls)")
	case c.URL != "" && len(c.URLs) > 0:
		errs.Addf("urls", "give either url or urls, not both")
	case c.URL != "":
		if _, err := parseURL(c.URL); err != nil {
			errs.Add(&conf.FieldError{Path: "url", Err: err})
		}
	default:
		for i, u := range c.URLs {
			if _, err := parseURL(u); err != nil {
				errs.Add(&conf.FieldError{Path: conf.Index("urls", i), Err: err})
			}
		}
	}
	if len(c.ClientID) > maxClientIDLen {
		errs.Addf("client_id", "is longer than %d bytes", maxClientIDLen)
	} else if strings.ContainsFunc(c.ClientID, isSpaceOrControl) {
		errs.Addf("client_id", "must not contain spaces or control characters")
	}
	if c.SubjectPrefix == "" {
		errs.Addf("subject_prefix", "is required")
	} else if err := validatePrefix(c.SubjectPrefix); err != nil {
		errs.Add(&conf.FieldError{Path: "subject_prefix", Err: err})
	}
	if c.Stream != "" {
		if err := validateStreamName(c.Stream); err != nil {
			errs.Add(&conf.FieldError{Path: "stream", Err: err})
		}
	} else if c.CreateStream {
		errs.Addf("stream", "is required with create_stream")
	}
	switch c.Mode {
	case "", ModeSample, ModeBatch:
	default:
		errs.Addf("mode", "%q is not supported (use %q or %q)", c.Mode, ModeSample, ModeBatch)
	}
	errs.AddPrefixed("tls", c.TLS.Validate())
	errs.AddPrefixed("password", c.Password.Validate())
	errs.AddPrefixed("token", c.Token.Validate())
	if c.Username != "" && !c.Password.IsSet() {
		errs.Addf("password", "is required with username")
	}
	if c.Password.IsSet() && c.Username == "" {
		errs.Addf("username", "is required with password")
	}
	auths := 0
	for _, set := range []bool{c.CredsFile != "", c.Username != "" || c.Password.IsSet(), c.Token.IsSet()} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		errs.Addf("creds_file", "give only one of creds_file, username/password and token")
	}
	if c.ConnectTimeout < 0 {
		errs.Addf("connect_timeout", "must not be negative")
	}
	if c.AckTimeout < 0 {
		errs.Addf("ack_timeout", "must not be negative")
	}
	if c.MaxPending < 0 || c.MaxPending > maxMaxPending {
		errs.Addf("max_pending", "must be between 1 and %d", maxMaxPending)
	}
	return errs.Err()
}

// schemes are the server URL schemes, with hints for a bare address.
var schemes = conf.Schemes{Accepted: []string{"nats", "tls"}, Plain: "nats", Secure: "tls"}

// parseURL checks a server URL and returns it with the default port
// filled in.
func parseURL(raw string) (string, error) {
	if err := schemes.Check(raw); err != nil {
		return "", err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("is not a URL")
	}
	if u.User != nil {
		// Credentials in a URL end up in logs and status output.
		return "", errors.New("must not contain credentials; use username/password, token or creds_file")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", errors.New("has no host")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("must be scheme://host[:port] without path or query")
	}
	port := u.Port()
	if port == "" {
		port = "4222"
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port), nil
}

// validateStreamName applies the server's rules for stream names: no
// whitespace, no '.', '*', '>', no path separators, printable.
func validateStreamName(n string) error {
	if len(n) > maxStreamName {
		return fmt.Errorf("is longer than %d bytes", maxStreamName)
	}
	if i := strings.IndexAny(n, ".*>/\\"); i >= 0 {
		return fmt.Errorf("%q must not contain %q", n, n[i])
	}
	if strings.ContainsFunc(n, isSpaceOrControl) {
		return fmt.Errorf("%q must not contain spaces or control characters", n)
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
