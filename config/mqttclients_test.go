package config

import (
	"strings"
	"testing"
)

// Two MQTT clients on one broker with one client id (the sink default is
// node.id) are refused, each at its own line naming the other; another
// broker, or another id, is fine.
func TestMQTTClientIDsUnique(t *testing.T) {
	const head = "node: {id: gw1}\nsources:\n  - name: plc\n    modbus:\n      devices:\n        - name: f\n" +
		"          address: 127.0.0.1:1\n          namespace: a/b\n          groups:\n            - interval: 1s\n" +
		"              tags:\n                - {name: speed, table: holding, address: 0, type: uint16}\nsinks:\n"
	sink := func(name, mqtt string) string {
		return "  - name: " + name + "\n    buffer: {type: memory}\n    mqtt: " + mqtt + "\n"
	}
	for _, tt := range []struct {
		name, doc string
		want      []string // "line: key" of each error
	}{
		{"defaults to node id", head + sink("a", `{url: "tcp://127.0.0.1:1883"}`) + sink("b", `{url: "mqtt://127.0.0.1"}`),
			[]string{"16: sinks[0].mqtt.client_id", "19: sinks[1].mqtt.client_id"}},
		{"same id written", head + sink("a", `{url: "tcp://h:1883", client_id: x}`) + sink("b", `{url: "tcp://h:1883", client_id: x}`) +
			"write_commands: {url: \"tcp://h:1883\", client_id: x, topic: cmd/#}\n",
			[]string{"16: sinks[0].mqtt.client_id", "19: sinks[1].mqtt.client_id", "write_commands.client_id"}},
		{"other broker", head + sink("a", `{url: "tcp://127.0.0.1:1883"}`) + sink("b", `{url: "tcp://127.0.0.1:1884"}`), nil},
		{"other id", head + sink("a", `{url: "tcp://h:1883"}`) + sink("b", `{url: "tcp://h:1883", client_id: gw1-b}`), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ps := Inspect("x.yaml", []byte(tt.doc), Options{Offline: true})
			var got []string
			for _, p := range ps {
				if strings.Contains(p.Msg, "two MQTT clients") {
					got = append(got, p.Error())
				}
			}
			if len(got) < len(tt.want) || (len(tt.want) == 0 && len(got) > 0) {
				t.Fatalf("problems %q, want at %q", got, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(strings.Join(got, "\n"), w) {
					t.Errorf("no problem at %q in %q", w, got)
				}
			}
		})
	}
}
