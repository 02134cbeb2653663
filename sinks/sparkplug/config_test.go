package sparkplug

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/mqttclient"
)

func TestSampleConfig(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader(SampleConfig))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.GroupID != "Plant1" || c.Device.Map["line1/press"] != "Press1" {
		t.Fatalf("decoded %+v", c)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Broker: mqttclient.Broker{URL: "tcp://127.0.0.1:1883"}, GroupID: "G", EdgeNodeID: "E"}
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // substrings of the error; nil: valid
	}{
		{"minimal", func(*Config) {}, nil},
		{"missing group id", func(c *Config) { c.GroupID, c.EdgeNodeID = "", "" }, []string{"group_id"}},
		{"reserved chars", func(c *Config) { c.GroupID, c.EdgeNodeID, c.PrimaryHostID = "a/b", "e+", "h#" }, []string{"group_id", "edge_node_id", "primary_host_id"}},
		{"bad url", func(c *Config) { c.URL = "http://x" }, []string{"url"}},
		{"no url", func(c *Config) { c.URL = "" }, []string{"url"}},
		{"bad version", func(c *Config) { c.ProtocolVersion = "3.1" }, []string{"protocol_version"}},
		{"legacy without host", func(c *Config) { c.LegacyState = true }, []string{"legacy_state"}},
		{"qos 2", func(c *Config) { c.DataQoS = 2 }, []string{"data_qos"}},
		{"negatives", func(c *Config) {
			c.KeepAlive, c.ConnectTimeout, c.RebirthDebounce, c.MaxInflight, c.MaxMetricsPerMessage, c.Device.Levels = -1, -1, -1, -1, -1, -1
		}, []string{"keep_alive", "connect_timeout", "rebirth_debounce", "max_inflight", "max_metrics_per_message", "device.levels"}},
		{"separator slash", func(c *Config) { c.Device.Separator = "/" }, []string{"device.separator"}},
		{"map value", func(c *Config) { c.Device.Map = map[string]string{"a/b": "x/y"} }, []string{"device.map.a/b"}},
		{"strip prefix slash", func(c *Config) { c.Device.StripPrefix = "/a" }, []string{"device.strip_prefix"}},
		{"password without user 3.1.1", func(c *Config) { c.Password.Env = "X" }, []string{"username"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Broker: mqttclient.Broker{URL: "tcp://h"}, GroupID: "G 1", EdgeNodeID: "E:1", DataDir: "/data"}
	c.setDefaults()
	if c.ProtocolVersion != Version311 || c.ClientID != "G 1_E:1" || !*c.SeqProperty || c.Device.Separator != ":" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.BdSeqFile != "/data/sparkplug/G_1_E_1.bdseq" {
		t.Fatalf("bdseq_file = %s", c.BdSeqFile)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name       string
		dev        DeviceConfig
		path       string
		wantDevice string
		wantMetric string
	}{
		{"asset path", DeviceConfig{}, "plant/line1/press/temp", "plant:line1:press", "temp"},
		{"single level is node metric", DeviceConfig{}, "uptime", "", "uptime"},
		{"strip prefix", DeviceConfig{StripPrefix: "plant"}, "plant/line1/press/temp", "line1:press", "temp"},
		{"strip prefix absent", DeviceConfig{StripPrefix: "other"}, "plant/a/temp", "plant:a", "temp"},
		{"levels 1 keeps folders in metric", DeviceConfig{Levels: 1}, "press/motor/speed", "press", "motor/speed"},
		{"levels deeper than path", DeviceConfig{Levels: 3}, "a/b/c", "", "a/b/c"},
		{"map", DeviceConfig{Map: map[string]string{"plant/line1": "L1"}}, "plant/line1/temp", "L1", "temp"},
		{"separator", DeviceConfig{Separator: "."}, "a/b/c", "a.b", "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{GroupID: "G", EdgeNodeID: "E", Device: tt.dev}
			c.setDefaults()
			d, m := newNode(&c).split(tt.path)
			if d != tt.wantDevice || m != tt.wantMetric {
				t.Fatalf("split(%q) = %q, %q; want %q, %q", tt.path, d, m, tt.wantDevice, tt.wantMetric)
			}
		})
	}
}

func TestBdSeqFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.bdseq")
	for want := range uint64(3) {
		got, err := nextBdSeq(path)
		if err != nil || got != want {
			t.Fatalf("nextBdSeq = %d, %v; want %d", got, err, want)
		}
	}
	if err := os.WriteFile(path, []byte("255\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := nextBdSeq(path); err != nil || got != 0 {
		t.Fatalf("after 255: %d, %v; want 0", got, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "0\n" {
		t.Fatalf("file holds %q", b)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := nextBdSeq(path); err == nil {
		t.Fatal("want error for a corrupt file")
	}
}
