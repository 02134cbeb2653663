package conf

import "testing"

func TestSchemesCheck(t *testing.T) {
	mqtt := Schemes{Accepted: []string{"tcp", "mqtt", "ssl", "mqtts", "tls"}, Plain: "mqtt", Secure: "mqtts", SecurePort: "8883"}
	opcua := Schemes{Accepted: []string{"opc.tcp"}, Plain: "opc.tcp"}
	pg := Schemes{Accepted: []string{"postgres", "postgresql"}, Plain: "postgres"}
	tests := []struct {
		name string
		s    Schemes
		raw  string
		want string // "" means accepted
	}{
		{"accepted", mqtt, "mqtt://b:1883", ""},
		{"accepted, host checked by the caller", mqtt, "tcp://:1883", ""},
		{"bare ip:port", mqtt, "127.0.0.1:1883", "has no scheme; did you mean mqtt://127.0.0.1:1883?"},
		{"bare secure port", mqtt, "broker.example:8883", "has no scheme; did you mean mqtts://broker.example:8883?"},
		{"bare host name", mqtt, "broker.example", "has no scheme; did you mean mqtt://broker.example?"},
		{"localhost", pg, "localhost:5432", "has no scheme; did you mean postgres://localhost:5432?"},
		{"bare ipv6", mqtt, "[::1]:1883", "has no scheme; did you mean mqtt://[::1]:1883?"},
		{"http for opc.tcp", opcua, "http://plc:4840/UA", `scheme "http" is not supported (opc.tcp); did you mean opc.tcp://plc:4840/UA?`},
		{"https for mqtt", mqtt, "https://b:8883", `scheme "https" is not supported (tcp, mqtt, ssl, mqtts, tls); did you mean mqtts://b:8883?`},
		{"websocket: no guess", mqtt, "ws://b:9001", `scheme "ws" is not supported (tcp, mqtt, ssl, mqtts, tls)`},
		{"credentials never echoed", mqtt, "http://u:pw@b:1883", `scheme "http" is not supported (tcp, mqtt, ssl, mqtts, tls)`},
		{"query dropped from the hint", pg, "tcp://db/x?password=pw", `scheme "tcp" is not supported (postgres, postgresql); did you mean postgres://db/x?`},
		{"another protocol: no guess", pg, "mysql://db/x", `scheme "mysql" is not supported (postgres, postgresql)`},
		{"bare word", mqtt, "broker", "is not a URL (want mqtt://host:port)"},
		{"credentials without scheme", mqtt, "u:pw@b:1883", "is not a URL (want mqtt://host:port)"},
		{"garbage", mqtt, "a b://c", "is not a URL (want mqtt://host:port)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Check(tt.raw)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("Check(%q) = %q\nwant %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestCheckHostPort(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"10.0.0.5:502", ""},
		{"plc.local:5020", ""},
		{"[fe80::1]:502", ""},
		{"10.0.0.5", "has no port; did you mean 10.0.0.5:502?"},
		{"plc.local", "has no port; did you mean plc.local:502?"},
		{"fe80::1", "has no port; did you mean [fe80::1]:502?"},
		{"tcp://10.0.0.5:503", "must be host:port, not a URL; did you mean 10.0.0.5:503?"},
		{"modbus://10.0.0.5", "must be host:port, not a URL; did you mean 10.0.0.5:502?"},
		{"tcp://u:pw@10.0.0.5", "must be host:port, not a URL"},
		{":502", "has no host (want host:port)"},
		{"plc:0", "has an invalid port (want 1..65535)"},
		{"plc:http", "has an invalid port (want 1..65535)"},
		{"a b c", "must be host:port"},
	}
	for _, tt := range tests {
		err := CheckHostPort(tt.raw, "502")
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckHostPort(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
