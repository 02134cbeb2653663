package opcua

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
)

// Defaults applied by setDefaults to keys left out of the configuration.
const (
	DefaultSecurityPolicy     = "Basic256Sha256"
	DefaultPublishingInterval = time.Second
	// DefaultMaxNotificationsPerPublish: see
	// SubscriptionConfig.MaxNotificationsPerPublish.
	DefaultMaxNotificationsPerPublish = 2000
	DefaultPollInterval               = time.Second
	DefaultBatchSize                  = 500
	DefaultSessionTimeout             = 10 * time.Minute
	DefaultRequestTimeout             = 10 * time.Second
	DefaultWatchdogInterval           = 5 * time.Second
	DefaultReconnectMax               = 30 * time.Second
	// DefaultMaxMessageSize: see Config.MaxMessageSize.
	DefaultMaxMessageSize = 4 << 20
	// MinMaxMessageSize and MaxMaxMessageSize bound max_message_size: one
	// 64 KiB chunk, and the most the patched gopcua accepts from any
	// server (uacp.MaxACKMessageSize).
	MinMaxMessageSize     = 64 << 10
	MaxMaxMessageSize     = 64 << 20
	DefaultApplicationURI = "urn:weir:opcua-client"
)

// Security policies by their short names, as written in security_policy.
// Basic128Rsa15 and Basic256 are deprecated by the OPC Foundation and are
// refused unless allow_deprecated_policy is set.
var policies = map[string]struct {
	uri        string
	deprecated bool
}{
	"None":                  {ua.SecurityPolicyURINone, false},
	"Basic128Rsa15":         {ua.SecurityPolicyURIBasic128Rsa15, true},
	"Basic256":              {ua.SecurityPolicyURIBasic256, true},
	"Basic256Sha256":        {ua.SecurityPolicyURIBasic256Sha256, false},
	"Aes128_Sha256_RsaOaep": {ua.SecurityPolicyURIAes128Sha256RsaOaep, false},
	"Aes256_Sha256_RsaPss":  {ua.SecurityPolicyURIAes256Sha256RsaPss, false},
}

var modes = map[string]ua.MessageSecurityMode{
	"None":           ua.MessageSecurityModeNone,
	"Sign":           ua.MessageSecurityModeSign,
	"SignAndEncrypt": ua.MessageSecurityModeSignAndEncrypt,
}

// Config is the `opcua:` block of a source: one server endpoint, one
// session, any number of subscriptions and polled groups.
type Config struct {
	// Endpoint is the server's discovery URL, opc.tcp://host:port[/path].
	// The endpoint the server describes is dialled at this address, not at
	// the host name it advertises, which is often unresolvable from here.
	Endpoint string `yaml:"endpoint"`
	// SecurityPolicy is a short policy name (None, Basic256Sha256,
	// Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss); default Basic256Sha256.
	// None must be written out: an unsecured session is never a default.
	SecurityPolicy string `yaml:"security_policy"`
	// SecurityMode is None, Sign or SignAndEncrypt; default SignAndEncrypt
	// (None with policy None).
	SecurityMode          string `yaml:"security_mode"`
	AllowDeprecatedPolicy bool   `yaml:"allow_deprecated_policy"`
	Auth                  Auth   `yaml:"auth"`
	// PKIDir holds the client's application instance certificate
	// (own/cert.pem, own/key.pem; created on first start) and the trust
	// list (trusted/, rejected/). Required unless the policy is None and
	// auth is anonymous.
	PKIDir string `yaml:"pki_dir"`
	// AutoTrustFirst trusts the first server certificate seen when
	// trusted/ is empty (trust on first use). Off by default.
	AutoTrustFirst bool `yaml:"auto_trust_first"`
	// ApplicationURI goes into the generated certificate and the session;
	// servers check that the two match.
	ApplicationURI string `yaml:"application_uri"`
	// Namespace is the tag path prefix of every item.
	Namespace     string               `yaml:"namespace"`
	Subscriptions []SubscriptionConfig `yaml:"subscriptions"`
	Poll          []PollConfig         `yaml:"poll"`
	// BatchSize bounds the monitored items per CreateMonitoredItems call
	// and the nodes per Read call.
	BatchSize      int           `yaml:"batch_size"`
	SessionTimeout time.Duration `yaml:"session_timeout"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxMessageSize is the largest response the session accepts, in bytes
	// (default 4 MiB, the OPC Foundation .NET stack's default; 64 KiB to
	// 64 MiB). It is announced in HEL with a chunk count to match, and
	// bounds what one server can make the gateway buffer: a message whose
	// chunks add up to more ends the session before it is decoded. What a
	// message decodes to can be far larger than its bytes (up to ~35x
	// retained for empty items; see README), so raise it with care.
	MaxMessageSize int `yaml:"max_message_size"`
	// WatchdogInterval: when nothing arrived from the server for this long
	// the source reads the server's clock; if that fails the session is
	// torn down and rebuilt. It catches half-open connections, which TCP
	// alone notices only after minutes.
	WatchdogInterval time.Duration `yaml:"watchdog_interval"`
	// ReconnectMax caps the backoff between session attempts.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// AllowInsecure accepts a user name and password on a session with
	// security mode None to another machine (warned at every start);
	// without it that is an error.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// Auth is the user identity presented when activating the session.
type Auth struct {
	Type     string      `yaml:"type"` // anonymous (default), username, certificate
	Username string      `yaml:"username"`
	Password conf.Secret `yaml:"password"`
	CertFile string      `yaml:"cert_file"` // PEM or DER user certificate
	KeyFile  string      `yaml:"key_file"`  // PEM RSA private key
}

// SubscriptionConfig is one OPC UA subscription.
type SubscriptionConfig struct {
	PublishingInterval time.Duration `yaml:"publishing_interval"`
	// MaxNotificationsPerPublish caps the items in one publish response;
	// the server sends the rest of a publishing interval's changes in
	// further responses right away. Smaller responses let Weir forward
	// the first part while the server encodes, and the client decodes,
	// the next (the tail latency of a 10,000-item subscription drops by a
	// few milliseconds at 2,000). The library keeps one publish request
	// outstanding, so each response costs a round trip: over a slow link
	// raise it. -1: no limit.
	MaxNotificationsPerPublish int `yaml:"max_notifications_per_publish"`
	// Priority among this session's subscriptions when the server has
	// several ready to publish (0–255, higher first).
	Priority uint8        `yaml:"priority"`
	Items    []ItemConfig `yaml:"items"`
}

// ItemConfig is one monitored item.
type ItemConfig struct {
	// Name is the tag path below the source's namespace ('/' separates
	// levels).
	Name string `yaml:"name"`
	// NodeID in OPC UA string form: ns=2;s=Line1.Temp, i=2258, or with a
	// namespace URI, nsu=urn:acme:plc;s=Temp, resolved on every session
	// because servers may renumber namespaces when they restart.
	NodeID string `yaml:"node_id"`
	// SamplingInterval defaults to the publishing interval.
	SamplingInterval time.Duration `yaml:"sampling_interval"`
	// QueueSize defaults to 1, or to enough samples for one publishing
	// interval when sampling is faster than publishing.
	QueueSize     uint32    `yaml:"queue_size"`
	DiscardOldest *bool     `yaml:"discard_oldest"` // default true
	Deadband      *Deadband `yaml:"deadband"`
}

// Deadband is a data-change filter (Part 4 §7.22.2).
type Deadband struct {
	Type  string  `yaml:"type"` // absolute or percent (of the EURange)
	Value float64 `yaml:"value"`
}

// PollConfig is a group of nodes read together at an interval, for
// servers or nodes where subscriptions are unavailable.
type PollConfig struct {
	Interval time.Duration `yaml:"interval"`
	Items    []PollItem    `yaml:"items"`
}

// PollItem is one polled node.
type PollItem struct {
	Name   string `yaml:"name"`
	NodeID string `yaml:"node_id"`
}

// setDefaults fills every key left out; it is the one place defaults live.
// It writes only into c's own copy of the slices (New clones them).
func (c *Config) setDefaults() {
	if c.SecurityPolicy == "" {
		c.SecurityPolicy = DefaultSecurityPolicy
	}
	if c.SecurityMode == "" {
		c.SecurityMode = "SignAndEncrypt"
		if c.SecurityPolicy == "None" {
			c.SecurityMode = "None"
		}
	}
	if c.Auth.Type == "" {
		c.Auth.Type = "anonymous"
	}
	if c.ApplicationURI == "" {
		c.ApplicationURI = DefaultApplicationURI
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.WatchdogInterval == 0 {
		c.WatchdogInterval = DefaultWatchdogInterval
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	for i := range c.Subscriptions {
		s := &c.Subscriptions[i]
		if s.PublishingInterval == 0 {
			s.PublishingInterval = DefaultPublishingInterval
		}
		if s.MaxNotificationsPerPublish == 0 {
			s.MaxNotificationsPerPublish = DefaultMaxNotificationsPerPublish
		}
		for j := range s.Items {
			it := &s.Items[j]
			if it.SamplingInterval == 0 {
				it.SamplingInterval = s.PublishingInterval
			}
			if it.QueueSize == 0 {
				it.QueueSize = 1
				if it.SamplingInterval < s.PublishingInterval {
					it.QueueSize = uint32((s.PublishingInterval+it.SamplingInterval-1)/it.SamplingInterval) + 1
				}
			}
			if it.DiscardOldest == nil {
				t := true
				it.DiscardOldest = &t
			}
		}
	}
	for i := range c.Poll {
		if c.Poll[i].Interval == 0 {
			c.Poll[i].Interval = DefaultPollInterval
		}
	}
}

// needsPKI reports whether the configuration needs the certificate store:
// for its own certificate (a secure channel, certificate auth) or for the
// trust list (a password is encrypted with the server's certificate, which
// must be trusted first, even on an unsecured channel).
func (c *Config) needsPKI() bool {
	return c.SecurityPolicy != "None" || (c.Auth.Type != "" && c.Auth.Type != "anonymous")
}

// endpointSchemes is the endpoint's one scheme, with hints for a bare
// address or an http:// URL.
var endpointSchemes = conf.Schemes{Accepted: []string{"opc.tcp"}, Plain: "opc.tcp"}

// CheckEndpoint checks an endpoint URL as written, suggesting the fix for
// a host:port or an http:// URL (`weir browse` uses it too).
func CheckEndpoint(endpoint string) error {
	switch u, err := url.Parse(endpoint); {
	case endpoint == "":
		return errors.New("is required (opc.tcp://host:port)")
	case endpointSchemes.Check(endpoint) != nil:
		return endpointSchemes.Check(endpoint)
	case err != nil || u.Host == "":
		return fmt.Errorf("%q is not an opc.tcp://host:port URL", conf.RedactURL(endpoint))
	case u.User != nil:
		// Credentials in a URL end up in logs and status output.
		return errors.New("must not contain credentials; use auth: {type: username, …}")
	}
	return nil
}

// Validate checks the configuration as written (no I/O) and reports every
// problem, each at its key path.
func (c *Config) Validate() error {
	var errs conf.Errors
	if err := CheckEndpoint(c.Endpoint); err != nil {
		errs.Add(&conf.FieldError{Path: "endpoint", Err: err})
	}
	policy := c.SecurityPolicy
	if policy == "" {
		policy = DefaultSecurityPolicy
	}
	if p, ok := policies[policy]; !ok {
		errs.Addf("security_policy", "unknown policy %q (want one of %s)", c.SecurityPolicy, strings.Join(policyNames(), ", "))
	} else if p.deprecated && !c.AllowDeprecatedPolicy {
		errs.Addf("security_policy", "%s is deprecated and insecure; set allow_deprecated_policy: true to use it anyway", policy)
	}
	if c.SecurityMode != "" {
		switch m, ok := modes[c.SecurityMode]; {
		case !ok:
			errs.Addf("security_mode", "unknown mode %q (want None, Sign or SignAndEncrypt)", c.SecurityMode)
		case policy == "None" && m != ua.MessageSecurityModeNone:
			errs.Addf("security_mode", "%s needs a security policy other than None", c.SecurityMode)
		case policy != "None" && m == ua.MessageSecurityModeNone:
			errs.Addf("security_mode", "None needs security_policy: None")
		}
	}
	c.validateAuth(&errs)
	if c.needsPKI() && c.PKIDir == "" {
		errs.Addf("pki_dir", "is required unless security_policy is None and auth is anonymous")
	}
	if c.Namespace != "" {
		if err := model.ValidatePath(c.Namespace); err != nil {
			errs.Addf("namespace", "%v", err)
		}
	}
	for _, f := range []struct {
		key string
		v   time.Duration
	}{{"session_timeout", c.SessionTimeout}, {"request_timeout", c.RequestTimeout},
		{"watchdog_interval", c.WatchdogInterval}, {"reconnect_max", c.ReconnectMax}} {
		if f.v < 0 {
			errs.Addf(f.key, "must not be negative")
		}
	}
	if c.BatchSize < 0 {
		errs.Addf("batch_size", "must not be negative")
	}
	if c.MaxMessageSize != 0 && (c.MaxMessageSize < MinMaxMessageSize || c.MaxMessageSize > MaxMaxMessageSize) {
		errs.Addf("max_message_size", "must be between %d (64 KiB) and %d (64 MiB) bytes", MinMaxMessageSize, MaxMaxMessageSize)
	}
	if len(c.Subscriptions) == 0 && len(c.Poll) == 0 {
		errs.Addf("subscriptions", "at least one subscription or poll group is required")
	}
	paths := map[string]string{}
	for i, s := range c.Subscriptions {
		key := conf.Index("subscriptions", i)
		if s.PublishingInterval < 0 {
			errs.Addf(key+".publishing_interval", "must not be negative")
		}
		if s.MaxNotificationsPerPublish < -1 || int64(s.MaxNotificationsPerPublish) > math.MaxUint32 {
			errs.Addf(key+".max_notifications_per_publish", "must be -1 (no limit) or 1 to %d", uint32(math.MaxUint32))
		}
		if len(s.Items) == 0 {
			errs.Addf(key+".items", "at least one item is required")
		}
		for j, it := range s.Items {
			ik := key + "." + conf.Index("items", j)
			c.validateItem(&errs, paths, ik, it.Name, it.NodeID)
			if it.SamplingInterval < 0 {
				errs.Addf(ik+".sampling_interval", "must not be negative")
			}
			if d := it.Deadband; d != nil {
				switch d.Type {
				case "absolute":
					if d.Value < 0 {
						errs.Addf(ik+".deadband.value", "must not be negative")
					}
				case "percent":
					if d.Value < 0 || d.Value > 100 {
						errs.Addf(ik+".deadband.value", "a percent deadband is 0..100, not %v", d.Value)
					}
				default:
					errs.Addf(ik+".deadband.type", "unknown type %q (want absolute or percent)", d.Type)
				}
			}
		}
	}
	for i, p := range c.Poll {
		key := conf.Index("poll", i)
		if p.Interval < 0 {
			errs.Addf(key+".interval", "must not be negative")
		}
		if len(p.Items) == 0 {
			errs.Addf(key+".items", "at least one item is required")
		}
		for j, it := range p.Items {
			c.validateItem(&errs, paths, key+"."+conf.Index("items", j), it.Name, it.NodeID)
		}
	}
	return errs.Err()
}

func (c *Config) validateAuth(errs *conf.Errors) {
	switch c.Auth.Type {
	case "", "anonymous":
	case "username":
		if c.Auth.Username == "" {
			errs.Addf("auth.username", "is required with auth type username")
		}
		if !c.Auth.Password.IsSet() {
			errs.Addf("auth.password", "is required with auth type username ({env: NAME} or {file: PATH})")
		}
	case "certificate":
		if c.Auth.CertFile == "" {
			errs.Addf("auth.cert_file", "is required with auth type certificate")
		}
		if c.Auth.KeyFile == "" {
			errs.Addf("auth.key_file", "is required with auth type certificate")
		}
	default:
		errs.Addf("auth.type", "unknown type %q (want anonymous, username or certificate)", c.Auth.Type)
	}
	if err := c.Auth.Password.Validate(); err != nil {
		errs.Addf("auth.password", "%v", err)
	}
}

func (c *Config) validateItem(errs *conf.Errors, paths map[string]string, key, name, nodeID string) {
	if name == "" {
		errs.Addf(key+".name", "is required")
	} else {
		p := model.JoinPath(c.Namespace, name)
		if err := model.ValidatePath(p); err != nil {
			errs.Addf(key+".name", "%v", err)
		} else if prev, dup := paths[p]; dup {
			errs.Addf(key+".name", "tag path %q is already used by %s", p, prev)
		} else {
			paths[p] = key
		}
	}
	if nodeID == "" {
		errs.Addf(key+".node_id", "is required")
	} else if err := checkNodeID(nodeID); err != nil {
		errs.Addf(key+".node_id", "%v", err)
	}
}

// checkNodeID checks a node id's syntax without a server: a namespace URI
// is accepted as written and resolved per session.
func checkNodeID(s string) error {
	if rest, ok := strings.CutPrefix(s, "nsu="); ok {
		uri, id, found := strings.Cut(rest, ";")
		if !found || uri == "" {
			return fmt.Errorf("%q: want nsu=<namespace uri>;<i|s|g|b>=<id>", s)
		}
		s = "ns=1;" + id
	}
	if _, err := ua.ParseNodeID(s); err != nil {
		return fmt.Errorf("%q is not a node id (ns=<index>;<i|s|g|b>=<id>): %v", s, err)
	}
	return nil
}

func policyNames() []string {
	return []string{"None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "Basic128Rsa15 (deprecated)", "Basic256 (deprecated)"}
}
