package mqttclient

import (
	"bytes"
	"cmp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSampleConfig(t *testing.T) {
	var b Broker
	dec := yaml.NewDecoder(bytes.NewReader([]byte(SampleConfig)))
	dec.KnownFields(true)
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(Defaults{}); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if b.URL == "" || b.ClientID == "" || !b.Password.IsSet() {
		t.Fatalf("sample decoded to %+v", b)
	}
}

// TestInlineKeys: embedded with ",inline", the keys sit beside the
// component's own, and unknown keys are still refused.
func TestInlineKeys(t *testing.T) {
	type component struct {
		Broker `yaml:",inline"`
		Topic  string `yaml:"topic"`
	}
	var c component
	dec := yaml.NewDecoder(strings.NewReader("url: tcp://h\nclient_id: x\nkeep_alive: 5s\ntopic: a/b\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.URL != "tcp://h" || c.ClientID != "x" || c.KeepAlive != 5*time.Second || c.Topic != "a/b" {
		t.Fatalf("decoded %+v", c)
	}
	var e struct {
		Endpoint `yaml:",inline"`
	}
	dec = yaml.NewDecoder(strings.NewReader("url: tcp://h\nclient_id: x\nprotocol_version: \"5\"\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&e); err == nil || !strings.Contains(err.Error(), "protocol_version") {
		t.Fatalf("Endpoint accepted protocol_version: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := func(b Broker) Broker { // the keys a case does not set, valid
		b.URL, b.ClientID = cmp.Or(b.URL, "tcp://127.0.0.1:1883"), cmp.Or(b.ClientID, "gw")
		return b
	}
	v311 := Defaults{ProtocolVersion: Version311}
	tests := []struct {
		name string
		b    Broker
		d    Defaults
		want []string // each must appear; nil: valid
	}{
		{"minimal", ok(Broker{}), Defaults{}, nil},
		{"every scheme", ok(Broker{URL: "mqtts://h"}), Defaults{}, nil},
		{"ipv6", ok(Broker{URL: "ssl://[::1]:8883"}), Defaults{}, nil},
		{"tls enabled with a TLS scheme", ok(Broker{URL: "tls://h", TLS: tlsconf.Config{Enabled: true}}), Defaults{}, nil},
		{"missing url and client id", Broker{}, Defaults{}, []string{"url: is required", "client_id: is required"}},
		{"client id defaulted", Broker{URL: "tcp://h"}, Defaults{ClientID: "G_E"}, nil},
		{"client id too long", ok(Broker{ClientID: strings.Repeat("x", 65536)}), Defaults{}, []string{"client_id: is longer than 65535 bytes"}},
		{"bad scheme", ok(Broker{URL: "ws://h:1"}), Defaults{}, []string{`url: scheme "ws" is not supported (tcp, mqtt, ssl, mqtts, tls)`}},
		{"credentials in url", ok(Broker{URL: "tcp://u:p@h"}), Defaults{}, []string{"url: must not contain credentials"}},
		{"url path", ok(Broker{URL: "tcp://h/x"}), Defaults{}, []string{"url: must be scheme://host"}},
		{"no host", ok(Broker{URL: "tcp://:1883"}), Defaults{}, []string{"url: has no host"}},
		{"tls enabled on plain url", ok(Broker{TLS: tlsconf.Config{Enabled: true}}), Defaults{},
			[]string{"tls.enabled: is true but the url scheme is plaintext; use mqtts:// or ssl://"}},
		{"version, default 5 first", ok(Broker{ProtocolVersion: "4"}), Defaults{},
			[]string{`protocol_version: "4" is not supported (use "5" or "3.1.1")`}},
		{"version, default 3.1.1 first", ok(Broker{ProtocolVersion: "3.1"}), v311,
			[]string{`protocol_version: "3.1" is not supported (use "3.1.1" or "5")`}},
		{"v5 password without username", ok(Broker{Password: conf.Secret{Env: "X"}}), Defaults{}, nil},
		{"3.1.1 password without username", ok(Broker{ProtocolVersion: Version311, Password: conf.Secret{Env: "X"}}), Defaults{},
			[]string{"username: is required with a password in MQTT 3.1.1"}},
		{"default 3.1.1 password without username", ok(Broker{Password: conf.Secret{Env: "X"}}), v311,
			[]string{"username: is required with a password in MQTT 3.1.1"}},
		{"two secret sources", ok(Broker{Password: conf.Secret{Env: "A", File: "b"}}), Defaults{}, []string{"password: give either env or file, not both"}},
		{"tls block", ok(Broker{URL: "mqtts://h", TLS: tlsconf.Config{CertFile: "c"}}), Defaults{}, []string{"tls.key_file: is required"}},
		{"keep alive under a second", ok(Broker{KeepAlive: time.Millisecond}), Defaults{}, []string{"keep_alive: must be at least 1s"}},
		{"negative keep alive", ok(Broker{KeepAlive: -time.Second}), Defaults{}, []string{"keep_alive: must not be negative"}},
		{"keep alive too long", ok(Broker{KeepAlive: 65536 * time.Second}), Defaults{}, []string{"keep_alive: must be at most 18h12m15s (65535 s)"}},
		{"negative connect timeout", ok(Broker{ConnectTimeout: -1}), Defaults{}, []string{"connect_timeout: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.b.Validate(tt.d)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted the block")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	e := Endpoint{URL: "tcp://h", ClientID: "x"}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	b := e.Broker()
	if b.ProtocolVersion != Version311 || b.KeepAlive != DefaultKeepAlive || b.ConnectTimeout != DefaultConnectTimeout || b.URL != "tcp://h" {
		t.Fatalf("Broker() = %+v", b)
	}
	e = Endpoint{URL: "http://h", ConnectTimeout: -1, Password: conf.Secret{Env: "X"}}
	err := e.Validate()
	for _, w := range []string{"url: scheme", "client_id: is required", "username: is required", "connect_timeout"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
}

func TestSetDefaults(t *testing.T) {
	b := Broker{URL: "tcp://h"}
	b.SetDefaults(Defaults{ProtocolVersion: Version311, ClientID: "G_E"})
	if b.ProtocolVersion != Version311 || b.ClientID != "G_E" || b.KeepAlive != 30*time.Second || b.ConnectTimeout != 10*time.Second {
		t.Fatalf("defaults: %+v", b)
	}
	b = Broker{URL: "tcp://h", ClientID: "mine", ProtocolVersion: Version5, KeepAlive: time.Minute, ConnectTimeout: time.Second}
	want := b
	b.SetDefaults(Defaults{ProtocolVersion: Version311, ClientID: "G_E"})
	if b != want {
		t.Fatalf("SetDefaults changed set keys: %+v", b)
	}
	if b := (Broker{}); func() bool { b.SetDefaults(Defaults{}); return b.ProtocolVersion != Version5 }() {
		t.Fatal("the default version is not 5")
	}
}

func TestOptions(t *testing.T) {
	t.Setenv("WEIR_MQTTCLIENT_PW", "s3cr3t")
	b := Broker{URL: "mqtt://broker.example", ClientID: "c", Username: "u", Password: conf.Secret{Env: "WEIR_MQTTCLIENT_PW"}}
	b.SetDefaults(Defaults{})
	o, err := b.Options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "broker.example:1883" || o.TLS != nil || o.Password != "s3cr3t" || o.Version != Version5 ||
		o.AckTimeout != b.KeepAlive || o.WriteTimeout != b.ConnectTimeout || b.Addr() != o.Addr {
		t.Fatalf("Options = %+v", o)
	}
	b.URL = "mqtts://broker.example"
	if o, err := b.Options(); err != nil || o.TLS == nil || o.Addr != "broker.example:8883" {
		t.Fatalf("Options over TLS = %+v, %v", o, err)
	}
	b.Password = conf.Secret{Env: "WEIR_MQTTCLIENT_UNSET"}
	if _, err := b.Options(); err == nil || !strings.HasPrefix(err.Error(), "password: ") {
		t.Fatalf("Options with a missing secret = %v", err)
	}
	b.Password = conf.Secret{}
	b.TLS = tlsconf.Config{CAFile: "/nonexistent/ca.pem"}
	if _, err := b.Options(); err == nil || !strings.HasPrefix(err.Error(), "tls: ") {
		t.Fatalf("Options with a missing CA = %v", err)
	}
}
