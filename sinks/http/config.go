package httpsink

import (
	_ "embed"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
)

// SampleConfig is a complete example of the `http:` block, shown by the CLI.
//
//go:embed sample.yaml
var SampleConfig string

// Defaults, applied by setDefaults.
const (
	DefaultMethod        = http.MethodPost
	DefaultTimeout       = 30 * time.Second
	DefaultMaxBodyBytes  = 1 << 20
	DefaultMaxRetryAfter = 5 * time.Minute
	DefaultAuthHeader    = "Authorization"
)

// DefaultRetryOn are the 4xx statuses treated as temporary when retry_on is
// not set: they say something about the receiver's state or our
// credentials (expired token, endpoint being deployed, resource locked),
// not about the batch, so dropping data on them would lose everything sent
// while an operator fixes the cause. 408 and 429 are always temporary.
var DefaultRetryOn = []int{401, 403, 404, 407, 409, 423, 425}

// minBodyBytes keeps max_body_bytes above the envelope and one ordinary
// sample.
const minBodyBytes = 1024

// Config is the `http:` block of a sink.
type Config struct {
	// URL receives the batches: http:// or https://. No credentials in it.
	URL string `yaml:"url"`
	// Method is POST (default) or PUT.
	Method string `yaml:"method"`
	// Headers are sent with every request. Tokens belong in auth_header,
	// not here, so that they never sit in the file.
	Headers map[string]string `yaml:"headers"`
	// AuthHeader is one header whose value is a secret read at Connect.
	AuthHeader AuthHeader `yaml:"auth_header"`
	// Gzip compresses bodies (Content-Encoding: gzip).
	Gzip bool `yaml:"gzip"`
	// Timeout bounds one request, response headers and body included
	// (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// TLS settings for https:// URLs (CA, client certificate for mTLS).
	TLS tlsconf.Config `yaml:"tls"`
	// MaxBodyBytes bounds the uncompressed body of one request (default
	// 1 MiB); a larger batch is split into several requests.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// RetryOn lists the 4xx statuses (besides 408 and 429) that are
	// temporary: the batch is kept and offered again. Unset: DefaultRetryOn.
	// Every other 4xx rejects the batch for good (ErrRejected).
	RetryOn []int `yaml:"retry_on"`
	// MaxRetryAfter caps the delay a receiver may ask for with Retry-After
	// (default 5m).
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// Node names this gateway in every body (default: node.id, itself
	// defaulting to the host name).
	Node string `yaml:"node"`
	// AllowInsecure accepts auth_header over http:// to another machine
	// (warned at every start); without it that is an error.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// AuthHeader is a header carrying a credential:
//
//	auth_header: {name: Authorization, prefix: "Bearer ", value: {env: WEIR_HTTP_TOKEN}}
type AuthHeader struct {
	// Name of the header (default Authorization when value is set).
	Name string `yaml:"name"`
	// Prefix is put before the secret ("Bearer ").
	Prefix string `yaml:"prefix"`
	// Value is read at Connect from the environment or a file.
	Value conf.Secret `yaml:"value"`
}

// setDefaults fills every unset key. It is the only place defaults live.
func (c *Config) setDefaults() {
	if c.Method == "" {
		c.Method = DefaultMethod
	}
	c.Method = strings.ToUpper(c.Method)
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RetryOn == nil {
		c.RetryOn = slices.Clone(DefaultRetryOn)
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if c.AuthHeader.Value.IsSet() && c.AuthHeader.Name == "" {
		c.AuthHeader.Name = DefaultAuthHeader
	}
}

// reservedHeaders are set by the sink itself.
var reservedHeaders = []string{"Content-Length", "Content-Encoding", "Transfer-Encoding", "Host", "Idempotency-Key", "Connection"}

// Validate checks the block as written; it does no I/O (the token and
// certificates are read at Connect).
func (c *Config) Validate() error {
	var errs conf.Errors
	if c.URL == "" {
		errs.Addf("url", "is required")
	} else if _, err := parseURL(c.URL); err != nil {
		errs.Add(&conf.FieldError{Path: "url", Err: err})
	} else if c.TLS.Enabled && !strings.HasPrefix(strings.ToLower(c.URL), "https://") {
		errs.Addf("tls.enabled", "is true but the url scheme is http; use https://")
	}
	switch strings.ToUpper(c.Method) {
	case "", http.MethodPost, http.MethodPut:
	default:
		errs.Addf("method", "%q is not supported (use POST or PUT)", c.Method)
	}
	keys := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys) // stable error order
	for _, k := range keys {
		path := "headers." + k
		canon := http.CanonicalHeaderKey(k)
		switch {
		case !validHeaderName(k):
			errs.Addf(path, "is not a valid header name")
		case slices.Contains(reservedHeaders, canon):
			errs.Addf(path, "is set by the sink and cannot be configured")
		case canon == "Authorization" || canon == "Proxy-Authorization":
			errs.Addf(path, "carries credentials; use auth_header so the value is not in the file")
		case c.AuthHeader.Name != "" && canon == http.CanonicalHeaderKey(c.AuthHeader.Name):
			errs.Addf(path, "is also auth_header.name")
		}
		if !validHeaderValue(c.Headers[k]) {
			errs.Addf(path, "value contains a control character")
		}
	}
	errs.AddPrefixed("auth_header", c.AuthHeader.validate())
	if c.Timeout < 0 {
		errs.Addf("timeout", "must not be negative")
	}
	errs.AddPrefixed("tls", c.TLS.Validate())
	if c.MaxBodyBytes != 0 && c.MaxBodyBytes < minBodyBytes {
		errs.Addf("max_body_bytes", "must be at least %d", minBodyBytes)
	}
	for i, code := range c.RetryOn {
		if code < 400 || code > 499 {
			errs.Addf(conf.Index("retry_on", i), "%d is not a 4xx status (5xx are always retried)", code)
		}
	}
	if c.MaxRetryAfter < 0 {
		errs.Addf("max_retry_after", "must not be negative")
	}
	if !validHeaderValue(c.Node) {
		errs.Addf("node", "contains a control character")
	}
	return errs.Err()
}

func (a *AuthHeader) validate() error {
	var errs conf.Errors
	errs.AddPrefixed("value", a.Value.Validate())
	if (a.Name != "" || a.Prefix != "") && !a.Value.IsSet() {
		errs.Addf("value", "is required when name or prefix is set")
	}
	if a.Name != "" {
		if !validHeaderName(a.Name) {
			errs.Addf("name", "is not a valid header name")
		} else if slices.Contains(reservedHeaders, http.CanonicalHeaderKey(a.Name)) {
			errs.Addf("name", "is set by the sink and cannot be configured")
		}
	}
	if !validHeaderValue(a.Prefix) {
		errs.Addf("prefix", "contains a control character")
	}
	return errs.Err()
}

// parseURL accepts http(s)://host[:port][/path][?query] without
// credentials (they would end up in logs and status output).
func parseURL(raw string) (*url.URL, error) {
	if err := conf.HTTPSchemes.Check(raw); err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("is not a URL")
	}
	if u.User != nil {
		return nil, errors.New("must not contain credentials; use auth_header")
	}
	if u.Hostname() == "" {
		return nil, errors.New("has no host")
	}
	if u.Fragment != "" {
		return nil, errors.New("must not have a fragment")
	}
	return u, nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters (CR/LF would split headers).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// SetNode names this gateway in every body when the block leaves node
// unset; the configuration passes node.id (default the host name) here.
func (c *Config) SetNode(node string) {
	if c.Node == "" {
		c.Node = node
	}
}
