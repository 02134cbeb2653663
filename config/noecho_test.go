package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secretValue is pasted into every place a secret could end up by mistake;
// it must never come back in an error or warning. It is not a valid
// environment variable name or absolute path, so no message has a reason
// to repeat it.
const secretValue = "s3cr3t-Wx9!q"

// noEchoBase is a valid file; each case replaces one line (after
// "#SINK") to put the secret where it does not belong.
const noEchoBase = `node: {id: edge-01}
sources:
  - name: plc
    modbus:
      devices:
        - name: d
          address: 127.0.0.1:5020
          groups: [{interval: 1s, tags: [{name: t, table: holding, address: 0, type: uint16}]}]
sinks:
#SINK
`

func TestSecretsNeverEchoed(t *testing.T) {
	s := secretValue
	tests := []struct{ name, sink string }{
		{"password written in clear", `  - {name: a, mqtt: {url: mqtts://b.example, client_id: c, username: u, password: "` + s + `"}}`},
		{"password as a list", `  - {name: a, mqtt: {url: mqtts://b.example, client_id: c, username: u, password: ["` + s + `"]}}`},
		{"env holding the value", `  - {name: a, mqtt: {url: mqtts://b.example, client_id: c, username: u, password: {env: "` + s + `"}}}`},
		{"file holding the value", `  - {name: a, mqtt: {url: mqtts://b.example, client_id: c, username: u, password: {file: "` + s + `"}}}`},
		{"pasted as a key", `  - {name: a, mqtt: {url: mqtts://b.example, client_id: c, username: u, password: {"` + s + `"}}}`},
		{"pasted as a key with a value", `  - {name: a, mqtt: {url: mqtts://b.example, client_id: c, username: u, password: {env: X, "` + s + `": 1}}}`},
		{"sasl pasted as a key", `  - {name: a, kafka: {brokers: ["k.example:9092"], topic: t, tls: {enabled: true}, sasl: {mechanism: plain, username: u, "` + s + `"}}}`},
		{"auth header pasted as a key", `  - {name: a, http: {url: "https://h.example/x", auth_header: {"Bearer ` + s + `"}}}`},
		{"value key", `  - {name: a, mqtt: {url: mqtts://b.example, client_id: c, username: u, password: {value: "` + s + `"}}}`},
		{"mqtt url userinfo", `  - {name: a, mqtt: {url: "mqtt://u:` + s + `@b.example", client_id: c}}`},
		{"mqtt url userinfo bad escape", `  - {name: a, mqtt: {url: "mqtt://u:` + s + `%zz@b.example", client_id: c}}`},
		{"nats url userinfo", `  - {name: a, nats: {url: "nats://u:` + s + `@n.example", subject_prefix: p}}`},
		{"nats token in clear", `  - {name: a, nats: {url: "tls://n.example", subject_prefix: p, token: "` + s + `"}}`},
		{"kafka broker userinfo", `  - {name: a, kafka: {brokers: ["kafka://u:` + s + `@k.example:9092"], topic: t}}`},
		{"kafka broker bare", `  - {name: a, kafka: {brokers: ["u:` + s + `@k.example:9092"], topic: t}}`},
		{"kafka sasl in clear", `  - {name: a, kafka: {brokers: ["k.example:9092"], topic: t, tls: {enabled: true}, sasl: "` + s + `"}}`},
		{"kafka sasl password in clear", `  - {name: a, kafka: {brokers: ["k.example:9092"], topic: t, tls: {enabled: true}, sasl: {mechanism: plain, username: u, password: "` + s + `"}}}`},
		{"http url userinfo", `  - {name: a, http: {url: "https://u:` + s + `@h.example/x"}}`},
		{"http url bad escape", `  - {name: a, http: {url: "https://u:` + s + `%zz@h.example/x"}}`},
		{"http auth header in clear", `  - {name: a, http: {url: "https://h.example/x", auth_header: "Bearer ` + s + `"}}`},
		{"http auth value in clear", `  - {name: a, http: {url: "https://h.example/x", auth_header: {value: "Bearer ` + s + `"}}}`},
		{"http authorization header", `  - {name: a, http: {url: "https://h.example/x", headers: {Authorization: "Bearer ` + s + `"}}}`},
		{"http header bad value", `  - {name: a, http: {url: "https://h.example/x", headers: {X-Key: "` + s + "\\n" + `"}}}`},
		{"postgres url password", `  - {name: a, postgres: {url: "postgres://u:` + s + `@db.example/x?sslmode=verify-full"}}`},
		{"postgres url query password", `  - {name: a, postgres: {url: "postgres://u@db.example/x?sslmode=verify-full&password=` + s + `"}}`},
		{"postgres url bad escape", `  - {name: a, postgres: {url: "postgres://u:` + s + `%zz@db.example/x"}}`},
		{"postgres dsn password", `  - {name: a, postgres: {dsn: "host=db.example sslmode=verify-full password=` + s + `"}}`},
		{"postgres dsn pasted value", `  - {name: a, postgres: {dsn: "host=db.example sslmode=verify-full ` + s + `"}}`},
		{"postgres dsn unclosed quote", `  - {name: a, postgres: {dsn: "host=db.example password='` + s + `"}}`},
		{"postgres password in clear", `  - {name: a, postgres: {url: "postgres://u@db.example/x?sslmode=verify-full", password: "` + s + `"}}`},
	}
	sources := []struct{ name, src string }{
		{"opcua endpoint userinfo", `    opcua: {endpoint: "opc.tcp://u:` + s + `@plc.example:4840", security_policy: None, subscriptions: [{items: [{name: t, node_id: "ns=2;s=T"}]}]}`},
		{"opcua endpoint bad escape", `    opcua: {endpoint: "opc.tcp://u:` + s + `%zz@plc.example:4840", security_policy: None, subscriptions: [{items: [{name: t, node_id: "ns=2;s=T"}]}]}`},
		{"opcua auth pasted as a key", `    opcua: {endpoint: "opc.tcp://plc.example:4840", auth: {type: username, username: u, "` + s + `"}, pki_dir: /p, subscriptions: [{items: [{name: t, node_id: "ns=2;s=T"}]}]}`},
		{"opcua auth in clear", `    opcua: {endpoint: "opc.tcp://plc.example:4840", auth: "` + s + `", pki_dir: /p, subscriptions: [{items: [{name: t, node_id: "ns=2;s=T"}]}]}`},
		{"opcua password in clear", `    opcua: {endpoint: "opc.tcp://plc.example:4840", auth: {type: username, username: u, password: "` + s + `"}, pki_dir: /p, subscriptions: [{items: [{name: t, node_id: "ns=2;s=T"}]}]}`},
	}
	top := []struct{ name, block string }{
		{"audit key in clear", `audit: {key: "` + s + `"}`},
		{"audit key env", `audit: {key: {env: "` + s + `"}}`},
		{"write_commands url userinfo", `write_commands: {url: "mqtt://u:` + s + `@b.example", client_id: w}`},
		{"alarms commands password in clear", `alarms: {commands: {url: "mqtts://b.example", client_id: w, username: u, password: "` + s + `"}}`},
		{"rule http url userinfo", "rules:\n  - {name: r, when: \"true\", actions: [{http: {url: \"http://u:" + s + "%zz@h.example/\"}}]}"},
	}
	type doc struct{ name, text string }
	var docs []doc
	okSink := `  - {name: z, mqtt: {url: mqtt://127.0.0.1, client_id: z}}`
	for _, tt := range tests {
		docs = append(docs, doc{tt.name, strings.Replace(noEchoBase, "#SINK", tt.sink, 1)})
	}
	for _, tt := range sources {
		text := strings.Replace(noEchoBase, "#SINK", okSink, 1)
		text = strings.Replace(text, "    modbus:\n      devices:\n        - name: d\n          address: 127.0.0.1:5020\n          groups: [{interval: 1s, tags: [{name: t, table: holding, address: 0, type: uint16}]}]\n", tt.src+"\n", 1)
		docs = append(docs, doc{tt.name, text})
	}
	for _, tt := range top {
		docs = append(docs, doc{tt.name, strings.Replace(noEchoBase, "#SINK", okSink, 1) + tt.block + "\n"})
	}
	dir := t.TempDir()
	// The environment holds the secret under every name the documents use,
	// as a misconfigured machine would.
	lookup := func(string) (string, bool) { return secretValue, true }
	for _, d := range docs {
		t.Run(d.name, func(t *testing.T) {
			_, perr := Parse("f.yaml", []byte(d.text), noEnv)
			if perr == nil {
				t.Fatalf("Parse accepted the document; the case tests nothing:\n%s", d.text)
			}
			_, ps := Inspect("f.yaml", []byte(d.text), Options{Lookup: lookup, Now: func() time.Time { return time.Unix(0, 0) }})
			p := filepath.Join(dir, "f.yaml")
			if err := os.WriteFile(p, []byte(d.text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, lerr := Load(p)
			for what, msg := range map[string]string{"Parse": perr.Error(), "Inspect": ps.Error(), "Load": errText(lerr)} {
				if strings.Contains(msg, secretValue) || strings.Contains(msg, "s3cr3t") {
					t.Errorf("%s echoes the secret:\n%s", what, msg)
				}
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
