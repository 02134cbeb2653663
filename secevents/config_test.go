package secevents

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
)

func TestSampleConfig(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(SampleConfig))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Syslog == nil || c.Syslog.Address == "" || c.Prefix != "acme/plant1" {
		t.Fatalf("sample decoded to %+v", c)
	}
}

// problem is one key Validate names, and whether it is only a warning.
type problem struct {
	key  string
	warn bool
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []problem
	}{
		{"zero value: sinks only", Config{}, nil},
		{"tls to a collector", Config{Syslog: &SyslogConfig{Address: "siem.example:6514"}}, nil},
		{"udp on this machine", Config{Syslog: &SyslogConfig{Address: "127.0.0.1:514", Protocol: "udp"}}, nil},
		{"tcp to localhost", Config{Syslog: &SyslogConfig{Address: "localhost:514", Protocol: "tcp"}}, nil},
		{"bad top-level keys", Config{Prefix: "a/+/b", MinSeverity: "loud", MaxPending: -1},
			[]problem{{"prefix", false}, {"min_severity", false}, {"max_pending", false}}},
		{"no address", Config{Syslog: &SyslogConfig{}}, []problem{{"syslog.address", false}}},
		{"address without port", Config{Syslog: &SyslogConfig{Address: "siem.example"}}, []problem{{"syslog.address", false}}},
		{"address as URL", Config{Syslog: &SyslogConfig{Address: "tcp://siem.example:514"}}, []problem{{"syslog.address", false}}},
		{"unknown protocol and facility", Config{Syslog: &SyslogConfig{Address: "h:1", Protocol: "http", Facility: "security"}},
			[]problem{{"syslog.protocol", false}, {"syslog.facility", false}}},
		{"clear text to another host is valid (Warnings says more)", Config{Syslog: &SyslogConfig{Address: "10.0.0.5:514", Protocol: "udp"}}, nil},
		{"tls block with tcp", Config{Syslog: &SyslogConfig{Address: "127.0.0.1:514", Protocol: "tcp", TLS: tlsconf.Config{CAFile: "/ca.pem"}}},
			[]problem{{"syslog.tls", false}}},
		{"half a client key pair", Config{Syslog: &SyslogConfig{Address: "h:6514", TLS: tlsconf.Config{CertFile: "/c.pem"}}},
			[]problem{{"syslog.tls.key_file", false}}},
		{"header fields", Config{Syslog: &SyslogConfig{Address: "h:6514", AppName: "my app", Hostname: strings.Repeat("h", 300)}},
			[]problem{{"syslog.app_name", false}, {"syslog.hostname", false}}},
		{"negative numbers", Config{Syslog: &SyslogConfig{Address: "h:6514", Queue: -1, DialTimeout: -1, WriteTimeout: -1, DrainTimeout: -1}},
			[]problem{{"syslog.queue", false}, {"syslog.dial_timeout", false}, {"syslog.write_timeout", false}, {"syslog.drain_timeout", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := flatten(t, tt.cfg.Validate())
			sortProblems(got)
			sortProblems(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v (%v)", got, tt.want, tt.cfg.Validate())
			}
		})
	}
}

func flatten(t *testing.T, err error) []problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var flat []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		flat = j.Unwrap()
	} else {
		flat = []error{err}
	}
	var got []problem
	for _, e := range flat {
		var fe *conf.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		got = append(got, problem{fe.Path, conf.IsWarning(e)})
	}
	return got
}

func sortProblems(ps []problem) {
	slices.SortFunc(ps, func(a, b problem) int { return strings.Compare(a.key, b.key) })
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []problem
	}{
		{"no syslog", Config{}, nil},
		{"tls", Config{Syslog: &SyslogConfig{Address: "siem.example:6514", Protocol: "tls"}}, nil},
		{"udp on this machine", Config{Syslog: &SyslogConfig{Address: "127.0.0.1:514", Protocol: "udp"}}, nil},
		{"tcp to localhost", Config{Syslog: &SyslogConfig{Address: "localhost:514", Protocol: "tcp"}}, nil},
		{"tcp to [::1]", Config{Syslog: &SyslogConfig{Address: "[::1]:514", Protocol: "tcp"}}, nil},
		{"udp to another host", Config{Syslog: &SyslogConfig{Address: "10.0.0.5:514", Protocol: "udp"}},
			[]problem{{"syslog.protocol", true}}},
		{"tcp to another host", Config{Syslog: &SyslogConfig{Address: "siem.example:514", Protocol: "tcp"}},
			[]problem{{"syslog.protocol", true}}},
		{"skip verify", Config{Syslog: &SyslogConfig{Address: "siem.example:6514", Protocol: "tls", TLS: tlsconf.Config{InsecureSkipVerify: true}}},
			[]problem{{"syslog.tls.insecure_skip_verify", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := flatten(t, tt.cfg.Warnings())
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// New refuses what Validate refuses, but only errors: a warning (clear
// text to another host) still runs.
func TestNewRefusesInvalid(t *testing.T) {
	if _, err := New(Config{Syslog: &SyslogConfig{}}, "n", nil); err == nil {
		t.Fatal("no error for a syslog block without address")
	}
	logs := make(logSignal, 10)
	s, err := New(Config{Syslog: &SyslogConfig{Address: "10.0.0.5:514", Protocol: "udp"}}, "n", slog.New(logs))
	if err != nil {
		t.Fatalf("a warning stopped New: %v", err)
	}
	// The insecure setting is said at start, in the log and as an event.
	if msg := wait(t, logs, "the warning"); !strings.Contains(msg, "clear text to 10.0.0.5") {
		t.Errorf("log %q", msg)
	}
	out := s.Flush(time.Now(), nil)
	if len(out) != 1 || out[0].Path != "weir/_security/config.insecure" ||
		!strings.Contains(out[0].Value.AsString(), `"object":"security_events.syslog.protocol"`) {
		t.Errorf("samples %v", out)
	}
}

func TestSeverityNames(t *testing.T) {
	for name, sev := range severities {
		if got := SeverityName(sev); got != name {
			t.Errorf("SeverityName(%d) = %q, want %q", sev, got, name)
		}
	}
	if got := SeverityName(9); got != "9" {
		t.Errorf("SeverityName(9) = %q", got)
	}
}
