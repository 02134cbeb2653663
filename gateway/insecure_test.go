package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/security"
)

// A file that allows an insecure transport loads, and every start says so
// in the log (with the key) and as a security event; a secure file says
// nothing.
func TestWarnInsecureAtStart(t *testing.T) {
	const base = `sources:
  - name: plc
    modbus:
      devices:
        - name: d
          address: 127.0.0.1:5020
          groups: [{interval: 1s, tags: [{name: t, table: holding, address: 0, type: uint16}]}]
sinks:
  - name: uns
    mqtt: {url: %s, client_id: a, username: u, password: {env: MQTT_PW}%s}
`
	tests := []struct {
		name, url, extra string
		wantKeys         []string
	}{
		{"allowed plaintext", "mqtt://broker.plant.example", ", allow_insecure: true", []string{"sinks[0].mqtt.password"}},
		{"skip verify", "mqtts://broker.plant.example", ", tls: {insecure_skip_verify: true}", []string{"sinks[0].mqtt.tls.insecure_skip_verify"}},
		{"tls", "mqtts://broker.plant.example", "", nil},
		{"loopback", "mqtt://127.0.0.1", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(strings.Replace(base, "%s", tt.url, 1), "%s", tt.extra, 1)
			cfg, err := config.Parse("t.yaml", []byte(text), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			var events []security.Event
			rec := security.RecorderFunc(func(_ context.Context, ev security.Event) { events = append(events, ev) })
			warnInsecure(context.Background(), cfg, log, rec)
			if len(events) != len(tt.wantKeys) {
				t.Fatalf("events = %+v, want keys %v", events, tt.wantKeys)
			}
			for i, k := range tt.wantKeys {
				ev := events[i]
				if ev.Kind != security.InsecureTransport || ev.Object != k || ev.Component != "uns" || ev.Severity != security.SeverityWarning {
					t.Errorf("event %d = %+v, want InsecureTransport at %s from uns", i, ev, k)
				}
				if !strings.Contains(logs.String(), "level=WARN msg=\"insecure transport\" key="+k) {
					t.Errorf("log lacks the warning for %s:\n%s", k, logs.String())
				}
			}
			if len(tt.wantKeys) == 0 && logs.Len() > 0 {
				t.Errorf("unexpected log: %s", logs.String())
			}
		})
	}
}
