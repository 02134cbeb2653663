package opcua

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/conf/conftest"
)

func decodeStrict(t *testing.T, data string) Config {
	t.Helper()
	return conftest.Decode[Config](t, data)
}

func TestSampleConfig(t *testing.T) {
	c := decodeStrict(t, SampleConfig)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	src, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(src.Tags()); n != 5 {
		t.Errorf("%d tags", n)
	}
	if src.Tags()[0].Path != "acme/plant1/filling/line1/filler/product_temp" {
		t.Errorf("first tag %q", src.Tags()[0].Path)
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Endpoint: "opc.tcp://h:4840", PKIDir: "/tmp/x", Subscriptions: []SubscriptionConfig{{Items: []ItemConfig{
		{Name: "a", NodeID: "i=1"},
		{Name: "b", NodeID: "i=2", SamplingInterval: 100 * time.Millisecond},
	}}}}
	src, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := src.cfg
	if d.SecurityPolicy != "Basic256Sha256" || d.SecurityMode != "SignAndEncrypt" || d.Auth.Type != "anonymous" || d.BatchSize != DefaultBatchSize {
		t.Errorf("defaults %+v", d)
	}
	a, b := d.Subscriptions[0].Items[0], d.Subscriptions[0].Items[1]
	if a.SamplingInterval != time.Second || a.QueueSize != 1 || !*a.DiscardOldest {
		t.Errorf("item a %+v", a)
	}
	if b.QueueSize != 11 {
		t.Errorf("item b queue %d, want 11 (1s / 100ms + 1)", b.QueueSize)
	}
	if got := d.Subscriptions[0].MaxNotificationsPerPublish; got != DefaultMaxNotificationsPerPublish {
		t.Errorf("max notifications per publish %d, want %d", got, DefaultMaxNotificationsPerPublish)
	}
	for n, want := range map[int]uint32{-1: math.MaxUint32, 1: 1, 2000: 2000} {
		if got := maxNotifications(n); got != want {
			t.Errorf("maxNotifications(%d) = %d, want %d", n, got, want)
		}
	}
	if c.Subscriptions[0].Items[0].QueueSize != 0 {
		t.Error("New wrote into the caller's config")
	}
	if none := (Config{SecurityPolicy: "None"}); true {
		none.setDefaults()
		if none.SecurityMode != "None" {
			t.Errorf("mode with policy None: %s", none.SecurityMode)
		}
	}
}

func TestBadConfigs(t *testing.T) {
	item := []ItemConfig{{Name: "a", NodeID: "i=1"}}
	base := func() Config {
		return Config{Endpoint: "opc.tcp://h:4840", SecurityPolicy: "None", Subscriptions: []SubscriptionConfig{{Items: item}}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		path   string
		msg    string
	}{
		{"no endpoint", func(c *Config) { c.Endpoint = "" }, "endpoint", "required"},
		{"http endpoint", func(c *Config) { c.Endpoint = "http://h" }, "endpoint", "opc.tcp"},
		{"unknown policy", func(c *Config) { c.SecurityPolicy = "Basic512" }, "security_policy", "unknown"},
		{"deprecated policy", func(c *Config) { c.SecurityPolicy = "Basic256"; c.PKIDir = "p" }, "security_policy", "deprecated"},
		{"sign without policy", func(c *Config) { c.SecurityMode = "Sign" }, "security_mode", "other than None"},
		{"secure without mode", func(c *Config) { c.SecurityPolicy = "Basic256Sha256"; c.SecurityMode = "None"; c.PKIDir = "p" }, "security_mode", "None needs"},
		{"secure without pki", func(c *Config) { c.SecurityPolicy = "" }, "pki_dir", "required"},
		{"username without password", func(c *Config) { c.Auth = Auth{Type: "username", Username: "u"}; c.PKIDir = "p" }, "auth.password", "required"},
		{"certificate without files", func(c *Config) { c.Auth = Auth{Type: "certificate"}; c.PKIDir = "p" }, "auth.cert_file", "required"},
		{"unknown auth", func(c *Config) { c.Auth.Type = "kerberos" }, "auth.type", "unknown"},
		{"bad namespace", func(c *Config) { c.Namespace = "a/+/b" }, "namespace", "wildcard"},
		{"nothing to read", func(c *Config) { c.Subscriptions = nil }, "subscriptions", "at least one"},
		{"empty subscription", func(c *Config) { c.Subscriptions[0].Items = nil }, "subscriptions[0].items", "at least one"},
		{"bad node id", func(c *Config) { c.Subscriptions[0].Items = []ItemConfig{{Name: "a", NodeID: "ns=x;i=1"}} }, "subscriptions[0].items[0].node_id", "not a node id"},
		{"bad nsu", func(c *Config) { c.Subscriptions[0].Items = []ItemConfig{{Name: "a", NodeID: "nsu=urn:x"}} }, "subscriptions[0].items[0].node_id", "want nsu="},
		{"no name", func(c *Config) { c.Subscriptions[0].Items = []ItemConfig{{NodeID: "i=1"}} }, "subscriptions[0].items[0].name", "required"},
		{"duplicate path", func(c *Config) { c.Poll = []PollConfig{{Items: []PollItem{{Name: "a", NodeID: "i=2"}}}} }, "poll[0].items[0].name", "already used"},
		{"bad deadband type", func(c *Config) {
			c.Subscriptions[0].Items = []ItemConfig{{Name: "a", NodeID: "i=1", Deadband: &Deadband{Type: "relative"}}}
		}, "subscriptions[0].items[0].deadband.type", "unknown"},
		{"percent over 100", func(c *Config) {
			c.Subscriptions[0].Items = []ItemConfig{{Name: "a", NodeID: "i=1", Deadband: &Deadband{Type: "percent", Value: 120}}}
		}, "subscriptions[0].items[0].deadband.value", "0..100"},
		{"max notifications below -1", func(c *Config) { c.Subscriptions[0].MaxNotificationsPerPublish = -2 }, "subscriptions[0].max_notifications_per_publish", "no limit"},
		{"max notifications over uint32", func(c *Config) {
			if strconv.IntSize == 32 {
				c.Subscriptions[0].MaxNotificationsPerPublish = -3 // an int cannot exceed uint32 here
				return
			}
			over := int64(math.MaxUint32) + 1
			c.Subscriptions[0].MaxNotificationsPerPublish = int(over)
		}, "subscriptions[0].max_notifications_per_publish", "no limit"},
		{"max message size below one chunk", func(c *Config) { c.MaxMessageSize = 1000 }, "max_message_size", "64 KiB"},
		{"max message size over 64 MiB", func(c *Config) { c.MaxMessageSize = 65<<20 + 1 }, "max_message_size", "64 MiB"},
		{"negative interval", func(c *Config) { c.Poll = []PollConfig{{Interval: -1, Items: []PollItem{{Name: "p", NodeID: "i=2"}}}} }, "poll[0].interval", "negative"},
		{"both secret sources", func(c *Config) {
			c.Auth = Auth{Type: "username", Username: "u", Password: conf.Secret{Env: "A", File: "f"}}
			c.PKIDir = "p"
		}, "auth.password", "either"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.path+": ") || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q lacks %q / %q", err, tc.path, tc.msg)
			}
			var fe *conf.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("not a FieldError: %v", err)
			}
			if _, err := New(c, nil); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}
