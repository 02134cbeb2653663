package postgres

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
)

// SampleConfig is a complete example of the `postgres:` block, shown by the
// CLI.
//
//go:embed sample.yaml
var SampleConfig string

// Defaults, applied by setDefaults.
const (
	DefaultSchema           = "public"
	DefaultTable            = "weir_samples"
	DefaultConnectTimeout   = 10 * time.Second
	DefaultStatementTimeout = 30 * time.Second
	DefaultApplicationName  = "weir"
)

// Identifier limits: PostgreSQL truncates names at 63 bytes; a table name
// leaves room for the index suffixes ("_path_time").
const (
	maxSchemaLen = 63
	maxTableLen  = 53
	maxAppName   = 63
)

// Config is the `postgres:` block of a sink.
type Config struct {
	// URL is a postgres:// (or postgresql://) connection URL. Give either
	// url or dsn. Neither may contain a password: use password.
	URL string `yaml:"url"`
	// DSN is a key=value connection string ("host=db port=5432 dbname=plant
	// user=weir sslmode=verify-full").
	DSN string `yaml:"dsn"`
	// Password is read at Connect from the environment or a file.
	Password conf.Secret `yaml:"password"`
	// Schema and Table name the destination (defaults public and
	// weir_samples). Lower-case letters, digits and '_' only.
	Schema string `yaml:"schema"`
	Table  string `yaml:"table"`
	// CreateTable creates the schema, table and indexes when missing
	// (default true). When false they must exist.
	CreateTable *bool `yaml:"create_table"`
	// Timescale turns a newly created table into a TimescaleDB hypertable
	// partitioned on time, when the timescaledb extension is installed.
	Timescale bool `yaml:"timescale"`
	// Node names this gateway in every row (default: node.id, itself
	// defaulting to the host name). Rows
	// are unique per (node, seq), which is what drops replays.
	Node string `yaml:"node"`
	// TLS: with enabled, the connection must use TLS with these settings,
	// whatever the sslmode of url/dsn says. Without it, sslmode applies.
	TLS tlsconf.Config `yaml:"tls"`
	// ConnectTimeout bounds dialling, TLS and authentication (default 10s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// StatementTimeout is the server-side statement_timeout of the
	// session (default 30s).
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	// ApplicationName shows in pg_stat_activity (default "weir").
	ApplicationName string `yaml:"application_name"`
	// AllowInsecure accepts a password with sslmode disable, allow or
	// prefer to another machine (warned at every start); without it that
	// is an error.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// setDefaults fills every unset key. It is the only place defaults live.
func (c *Config) setDefaults() {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.CreateTable == nil {
		t := true
		c.CreateTable = &t
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.ApplicationName == "" {
		c.ApplicationName = DefaultApplicationName
	}
}

// connString is the url or the dsn, whichever is set.
func (c *Config) connString() string {
	if c.URL != "" {
		return c.URL
	}
	return c.DSN
}

// Validate checks the block as written; it does no I/O (the password and
// certificates are read at Connect).
func (c *Config) Validate() error {
	var errs conf.Errors
	switch {
	case c.URL == "" && c.DSN == "":
		errs.Addf("url", "is required (or dsn)")
	case c.URL != "" && c.DSN != "":
		errs.Addf("dsn", "give either url or dsn, not both")
	case c.URL != "":
		if err := checkURL(c.URL); err != nil {
			errs.Add(&conf.FieldError{Path: "url", Err: err})
		}
	default:
		if err := checkDSN(c.DSN); err != nil {
			errs.Add(&conf.FieldError{Path: "dsn", Err: err})
		}
	}
	errs.AddPrefixed("password", c.Password.Validate())
	if c.Schema != "" {
		if err := checkIdent(c.Schema, maxSchemaLen); err != nil {
			errs.Add(&conf.FieldError{Path: "schema", Err: err})
		}
	}
	if c.Table != "" {
		if err := checkIdent(c.Table, maxTableLen); err != nil {
			errs.Add(&conf.FieldError{Path: "table", Err: err})
		}
	}
	if strings.ContainsFunc(c.Node, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		errs.Addf("node", "contains a control character")
	}
	errs.AddPrefixed("tls", c.TLS.Validate())
	if c.ConnectTimeout < 0 {
		errs.Addf("connect_timeout", "must not be negative")
	}
	if c.StatementTimeout < 0 || (c.StatementTimeout > 0 && c.StatementTimeout < time.Millisecond) {
		errs.Addf("statement_timeout", "must be at least 1ms")
	}
	if len(c.ApplicationName) > maxAppName {
		errs.Addf("application_name", "is longer than %d bytes", maxAppName)
	} else if strings.ContainsFunc(c.ApplicationName, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		errs.Addf("application_name", "must be printable ASCII")
	}
	return errs.Err()
}

// checkIdent accepts the identifiers that need no quoting and cannot
// surprise anyone: lower-case ASCII letters, digits and '_', not starting
// with a digit. They are quoted anyway when used.
func checkIdent(s string, maxLen int) error {
	if len(s) > maxLen {
		return fmt.Errorf("%q is longer than %d bytes", s, maxLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return fmt.Errorf("%q is not a plain identifier (lower-case letters, digits and '_', not starting with a digit)", s)
	}
	if strings.HasPrefix(s, "pg_") {
		return fmt.Errorf("%q uses the reserved prefix pg_", s)
	}
	return nil
}

// schemes are the url key's schemes, with hints for a bare address.
var schemes = conf.Schemes{Accepted: []string{"postgres", "postgresql"}, Plain: "postgres"}

// checkURL accepts postgres:// and postgresql:// URLs without a password.
func checkURL(raw string) error {
	if err := schemes.Check(raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		return errors.New("must not contain a password; use password: {env: …} or {file: …}")
	}
	return nil
}

// checkDSN parses a key=value connection string enough to refuse a
// password in it; pgx checks the keys at Connect.
func checkDSN(dsn string) error {
	if !strings.Contains(dsn, "=") && conf.CheckHostPort(dsn, "5432") == nil {
		return fmt.Errorf("is host:port, not key=value pairs; did you mean url: postgres://%s?", dsn)
	}
	kv, err := parseDSN(dsn)
	if err != nil {
		return err
	}
	if _, has := kv["password"]; has {
		return errors.New("must not contain a password; use password: {env: …} or {file: …}")
	}
	return nil
}

// parseDSN splits "k1=v1 k2='v 2'" as libpq does: values may be single
// quoted, and a backslash escapes the next character.
func parseDSN(s string) (map[string]string, error) {
	if strings.Contains(s, "://") {
		return nil, errors.New("looks like a URL; use the url key")
	}
	kv := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return kv, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			// What is written is not repeated: a pasted password would be.
			return nil, errors.New("has a word without '=' (want key=value pairs; the text is not shown, in case it is a password)")
		}
		key := strings.TrimSpace(s[:eq])
		if key == "" || strings.ContainsAny(key, " \t\n\r'\\") {
			return nil, errors.New("has a key with a space, quote or backslash (want key=value pairs; the text is not shown, in case it is a password)")
		}
		s = strings.TrimLeft(s[eq+1:], " \t\n\r")
		var b strings.Builder
		quoted := strings.HasPrefix(s, "'")
		if quoted {
			s = s[1:]
		}
		i, closed := 0, false
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s):
				i++
				b.WriteByte(s[i])
				continue
			case quoted && c == '\'':
				closed = true
			case !quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
				closed = true
			}
			if closed {
				break
			}
			b.WriteByte(c)
		}
		if quoted && !closed {
			return nil, errors.New("has a quoted value without its closing quote")
		}
		if quoted {
			i++ // the closing quote
		}
		kv[key] = b.String()
		s = s[min(i, len(s)):]
	}
}

// SetNode names this gateway in every row when the block leaves node
// unset; the configuration passes node.id (default the host name) here.
func (c *Config) SetNode(node string) {
	if c.Node == "" {
		c.Node = node
	}
}
