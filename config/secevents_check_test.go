package config

import (
	"strings"
	"testing"
)

// weir validate warns about security events sent in clear text to
// another host, at the key's line, and still accepts the file.
func TestInspectWarnsAboutClearTextSyslog(t *testing.T) {
	const rest = `sources:
  - name: plc
    modbus:
      devices:
        - name: filler
          address: 127.0.0.1:5020
          namespace: acme/plant1
          groups:
            - interval: 1s
              tags:
                - {name: speed, table: holding, address: 0, type: uint16}
sinks:
  - name: uns
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: a}
`
	for _, tt := range []struct {
		name, block string
		want        []string
	}{
		{"udp to another host", "security_events:\n  syslog:\n    address: 10.0.0.5:514\n    protocol: udp\n",
			[]string{"x.yaml:4: security_events.syslog.protocol: warning: udp sends security events in clear text to 10.0.0.5: anyone on the path can read and forge them (use protocol tls)"}},
		{"skip verify", "security_events:\n  syslog:\n    address: siem.example:6514\n    tls: {insecure_skip_verify: true}\n",
			[]string{"x.yaml:4: security_events.syslog.tls.insecure_skip_verify: warning: the collector's certificate is not verified: anyone on the path can read and forge security events"}},
		{"tls", "security_events:\n  syslog: {address: \"siem.example:6514\"}\n", nil},
		{"udp to this machine", "security_events:\n  syslog: {address: \"127.0.0.1:514\", protocol: udp}\n", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ps := Inspect("x.yaml", []byte(tt.block+rest), Options{Lookup: func(string) (string, bool) { return "", false }})
			if cfg == nil {
				t.Fatalf("refused: %v", ps)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("problems\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
