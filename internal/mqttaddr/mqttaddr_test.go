package mqttaddr

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		raw, addr string
		tls       bool
		err       string
	}{
		{"tcp://127.0.0.1", "127.0.0.1:1883", false, ""},
		{"mqtt://broker:1884", "broker:1884", false, ""},
		{"mqtts://broker", "broker:8883", true, ""},
		{"ssl://[::1]:9000", "[::1]:9000", true, ""},
		{"tls://b/", "b:8883", true, ""},
		{"http://b", "", false, "scheme"},
		{"tcp://user:pw@b", "", false, "credentials"},
		{"tcp://", "", false, "no host"},
		{"tcp://b/topic", "", false, "without path"},
		{"tcp://b?x=1", "", false, "without path"},
		{"::", "", false, "not a URL"},
		{"127.0.0.1:1883", "", false, "has no scheme; did you mean mqtt://127.0.0.1:1883?"},
		{"broker:8883", "", false, "has no scheme; did you mean mqtts://broker:8883?"},
		{"https://b:8883", "", false, `scheme "https" is not supported (tcp, mqtt, ssl, mqtts, tls); did you mean mqtts://b:8883?`},
	}
	for _, tt := range tests {
		addr, useTLS, err := Parse(tt.raw)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) err = %v, want %q", tt.raw, err, tt.err)
			}
			continue
		}
		if err != nil || addr != tt.addr || useTLS != tt.tls {
			t.Errorf("Parse(%q) = %q %v %v", tt.raw, addr, useTLS, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("tcp://127.0.0.1:1883")
	f.Fuzz(func(t *testing.T, raw string) {
		if addr, _, err := Parse(raw); err == nil && addr == "" {
			t.Fatalf("%q: no error and no address", raw)
		}
	})
}
