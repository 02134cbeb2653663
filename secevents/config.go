package secevents

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

// Defaults applied by New to keys left out.
const (
	DefaultPrefix       = "weir"
	DefaultMaxPending   = 1000
	DefaultQueue        = 10_000
	DefaultFacility     = "auth"
	DefaultAppName      = "weir"
	DefaultProtocol     = "tls"
	DefaultDialTimeout  = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultDrainTimeout = 5 * time.Second
	// MaxQueue bounds queue and max_pending: each queued event holds up to
	// a few KiB (the capped fields), so a million is already a few GiB.
	MaxQueue = 1_000_000
)

// Config is the top-level `security_events:` block. Without it, events
// still become samples (under weir/_security/<kind>, routed and
// classified like any tag) and nothing goes to syslog.
type Config struct {
	// ToSinks turns the samples for the sinks on or off; default on, so
	// IT receives security events through whatever sinks exist, with
	// their durable buffers.
	ToSinks *bool `yaml:"to_sinks"`
	// Prefix of the sample paths: an event of kind K is a sample on
	// <prefix>/_security/<K>. Default "weir" (as the alarms' prefix).
	Prefix string `yaml:"prefix"`
	// MinSeverity drops less severe events before they reach the sinks
	// and syslog (they are still counted): emergency, alert, critical,
	// error, warning, notice, info (default) or debug.
	MinSeverity string `yaml:"min_severity"`
	// MaxPending bounds the events waiting for the next engine tick (the
	// sinks' path, every 100 ms); beyond it they are dropped and counted.
	// Default 1000, i.e. 10,000 events a second; each holds up to ~4 KiB.
	MaxPending int `yaml:"max_pending"`
	// Syslog sends every event to a syslog server as RFC 5424; nil: no
	// syslog.
	Syslog *SyslogConfig `yaml:"syslog"`
}

// SyslogConfig is the `syslog:` block: where and how events are sent.
type SyslogConfig struct {
	// Address is host:port of the collector (a SIEM, rsyslog, syslog-ng).
	Address string `yaml:"address"`
	// Protocol is udp (RFC 5426), tcp (RFC 6587 octet counting) or tls
	// (RFC 5425, the default).
	Protocol string `yaml:"protocol"`
	// TLS configures protocol tls: ca_file (default: the system roots),
	// server_name, a client certificate, min_version.
	TLS tlsconf.Config `yaml:"tls"`
	// Facility is the syslog facility by name: auth (default), authpriv,
	// audit, daemon, user, local0 … local7 and the rest of RFC 5424's list.
	Facility string `yaml:"facility"`
	// AppName is the APP-NAME field; default "weir".
	AppName string `yaml:"app_name"`
	// Hostname is the HOSTNAME field; default node.id.
	Hostname string `yaml:"hostname"`
	// Queue bounds the events waiting to be sent; while the collector is
	// away it fills, then further events are dropped and counted. Default
	// 10000; each holds at most ~2.5 KiB (the capped fields), typically a
	// few hundred bytes.
	Queue int `yaml:"queue"`
	// DialTimeout bounds a connection attempt (TLS handshake included);
	// default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// WriteTimeout bounds sending one message; default 10s. A collector
	// that stops reading counts as down after it.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// DrainTimeout bounds sending what is queued at shutdown; default 5s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// facilities are RFC 5424 §6.2.1's facility codes by their usual names.
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// severities are RFC 5424's severity codes by name (min_severity).
var severities = map[string]security.Severity{
	"emergency": 0, "alert": 1, "critical": 2, "error": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7,
}

// SeverityName is the lowercase name of a syslog severity ("warning"),
// as events carry it in their JSON form; a number out of range is
// written as its digits.
func SeverityName(s security.Severity) string {
	if s >= 0 && int(s) < len(severityNames) {
		return severityNames[s]
	}
	return strconv.Itoa(int(s))
}

// severityNames are the names of severities 0..7.
var severityNames = [...]string{"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"}

// ParseFacility returns the code of a facility name.
func ParseFacility(name string) (int, error) {
	if f, ok := facilities[name]; ok {
		return f, nil
	}
	return 0, fmt.Errorf("unknown facility %q (want auth, authpriv, audit, daemon, user, local0 … local7 or another RFC 5424 name)", name)
}

// ParseSeverity returns the code of a severity name.
func ParseSeverity(name string) (security.Severity, error) {
	if s, ok := severities[name]; ok {
		return s, nil
	}
	return 0, fmt.Errorf("unknown severity %q (want emergency, alert, critical, error, warning, notice, info or debug)", name)
}

// sinksOn reports whether events go to the sinks.
func (c *Config) sinksOn() bool { return c.ToSinks == nil || *c.ToSinks }

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.MinSeverity == "" {
		c.MinSeverity = "info"
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if s := c.Syslog; s != nil {
		if s.Protocol == "" {
			s.Protocol = DefaultProtocol
		}
		if s.Facility == "" {
			s.Facility = DefaultFacility
		}
		if s.AppName == "" {
			s.AppName = DefaultAppName
		}
		if s.Queue == 0 {
			s.Queue = DefaultQueue
		}
		if s.DialTimeout == 0 {
			s.DialTimeout = DefaultDialTimeout
		}
		if s.WriteTimeout == 0 {
			s.WriteTimeout = DefaultWriteTimeout
		}
		if s.DrainTimeout == 0 {
			s.DrainTimeout = DefaultDrainTimeout
		}
	}
}

// Validate checks the block as written; it does no I/O. What works but
// is insecure is not an error here; Warnings reports it.
func (c *Config) Validate() error {
	var errs conf.Errors
	if c.Prefix != "" {
		if err := model.ValidatePath(c.Prefix); err != nil {
			errs.Add(conf.Errorf("prefix", "%w", err))
		}
	}
	if c.MinSeverity != "" {
		if _, err := ParseSeverity(c.MinSeverity); err != nil {
			errs.Add(&conf.FieldError{Path: "min_severity", Err: err})
		}
	}
	if c.MaxPending < 0 || c.MaxPending > MaxQueue {
		errs.Addf("max_pending", "must be between 1 and %d events", MaxQueue)
	}
	if c.Syslog != nil {
		errs.AddPrefixed("syslog", c.Syslog.Validate())
	}
	return errs.Err()
}

// Validate checks the syslog block as written; it does no I/O.
func (s *SyslogConfig) Validate() error {
	var errs conf.Errors
	if s.Address == "" {
		errs.Addf("address", "is required (host:port of the syslog collector, e.g. siem.example:6514)")
	} else if err := conf.CheckHostPort(s.Address, "6514"); err != nil {
		errs.Addf("address", "%v", err)
	}
	proto := s.Protocol
	if proto == "" {
		proto = DefaultProtocol
	}
	switch proto {
	case "tls":
		errs.AddPrefixed("tls", s.TLS.Validate())
	case "udp", "tcp":
		if s.TLS != (tlsconf.Config{}) {
			errs.Addf("tls", "applies to protocol tls only (protocol is %s)", proto)
		}
	default:
		errs.Addf("protocol", "unknown protocol %q (want udp, tcp or tls)", s.Protocol)
	}
	if s.Facility != "" {
		if _, err := ParseFacility(s.Facility); err != nil {
			errs.Add(&conf.FieldError{Path: "facility", Err: err})
		}
	}
	if err := checkHeaderField(s.AppName, 48); err != nil {
		errs.Add(&conf.FieldError{Path: "app_name", Err: err})
	}
	if err := checkHeaderField(s.Hostname, 255); err != nil {
		errs.Add(&conf.FieldError{Path: "hostname", Err: err})
	}
	if s.Queue < 0 || s.Queue > MaxQueue {
		errs.Addf("queue", "must be between 1 and %d events", MaxQueue)
	}
	for key, d := range map[string]time.Duration{"dial_timeout": s.DialTimeout, "write_timeout": s.WriteTimeout, "drain_timeout": s.DrainTimeout} {
		if d < 0 {
			errs.Addf(key, "must not be negative")
		}
	}
	return errs.Err()
}

// Warnings reports, as conf.Warning field errors, what works but exposes
// the events: clear-text syslog (udp, tcp) to a host other than this one,
// and tls without verifying the collector's certificate. It does no I/O.
// They are not part of Validate because a warning there would stop the
// gateway from starting; New logs each one and records it as a
// config.insecure event.
func (c *Config) Warnings() error {
	s := c.Syslog
	if s == nil {
		return nil
	}
	var errs conf.Errors
	host, _, err := net.SplitHostPort(s.Address)
	switch proto := s.Protocol; {
	case proto == "udp" || proto == "tcp":
		if err == nil && !isLoopback(host) {
			errs.Add(conf.Warnf("syslog.protocol", "%s sends security events in clear text to %s: anyone on the path can read and forge them (use protocol tls)", proto, host))
		}
	case s.TLS.InsecureSkipVerify:
		errs.Add(conf.Warnf("syslog.tls.insecure_skip_verify", "the collector's certificate is not verified: anyone on the path can read and forge security events"))
	}
	return errs.Err()
}

// checkHeaderField checks an RFC 5424 header field as configured:
// printable US-ASCII without spaces, at most max bytes ("" is the default).
func checkHeaderField(v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("is %d bytes long, syslog allows at most %d", len(v), max)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 33 || v[i] > 126 {
			return fmt.Errorf("%q may only hold printable ASCII without spaces", v)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
