package hub_test

import (
	"strings"
	"testing"

	"github.com/weir-edge/weir/fleet/hub"
)

func TestSampleConfig(t *testing.T) {
	c, err := hub.LoadConfig("sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/weir-hub" || !c.TLSAuto || c.Listen != "0.0.0.0:4222" {
		t.Fatalf("sample decoded as %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  hub.Config
		want string
	}{
		{"no data dir", hub.Config{}, "data_dir is required"},
		{"cert without key", hub.Config{DataDir: "d", TLSCert: "c"}, "tls_cert and tls_key go together"},
		{"tls with an external nats", hub.Config{DataDir: "d", NATSURL: "nats://x", TLSAuto: true}, "with nats_url"},
		{"two replicas", hub.Config{DataDir: "d", Replicas: 2}, "use 1 or 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}
