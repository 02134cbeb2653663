package config

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/pipeline"
)

// permanentDoc has one sink of every kind; SECRET and CA are replaced by a
// secret reference and a tls block per case. Every address is closed
// (127.0.0.1:1), so a sink that got as far as dialling fails with a
// transient error and the test sees it.
const permanentDoc = `data_dir: DATA
sources:
  - name: plc
    modbus:
      devices:
        - name: filler
          address: 127.0.0.1:1
          namespace: acme/plant1
          groups:
            - interval: 1s
              tags:
                - {name: speed, table: holding, address: 0, type: uint16}
sinks:
  - name: mqtt
    buffer: {type: memory}
    mqtt: {url: "SCHEME_MQTT://127.0.0.1:1", client_id: a, username: u, password: SECRET, tls: CA}
  - name: sparkplug
    buffer: {type: memory}
    sparkplug: {url: "SCHEME_MQTT://127.0.0.1:1", group_id: g, edge_node_id: e, client_id: s, username: u, password: SECRET, tls: CA}
  - name: nats
    buffer: {type: memory}
    nats: {url: "SCHEME_NATS://127.0.0.1:1", subject_prefix: weir, username: u, password: SECRET, tls: CA}
  - name: kafka
    buffer: {type: memory}
    kafka: {brokers: ["127.0.0.1:1"], topic: weir, sasl: {mechanism: plain, username: u, password: SECRET}, tls: CA}
  - name: http
    buffer: {type: memory}
    http: {url: "SCHEME_HTTP://127.0.0.1:1/x", auth_header: {name: X-Token, value: SECRET}, tls: CA}
  - name: postgres
    buffer: {type: memory}
    postgres: {url: "postgres://u@127.0.0.1:1/test", password: SECRET, tls: CA}
`

// A sink whose secret or CA file cannot be read fails Connect with
// pipeline.ErrPermanent — through every layer between internal/conf or
// internal/tlsconf and the engine — so the engine marks it failed instead
// of retrying forever.
func TestConnectErrorsArePermanent(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]*strings.Replacer{
		"missing secret": strings.NewReplacer("SECRET", "{env: WEIR_TEST_SURELY_UNSET}", "CA", "{}",
			"SCHEME_MQTT", "tcp", "SCHEME_NATS", "nats", "SCHEME_HTTP", "http"),
		"missing CA file": strings.NewReplacer(
			", username: u, password: SECRET", "", ", sasl: {mechanism: plain, username: u, password: SECRET}", "",
			", auth_header: {name: X-Token, value: SECRET}", "", ", password: SECRET", "",
			"CA", "{enabled: true, ca_file: "+filepath.Join(dir, "nope.pem")+"}",
			"SCHEME_MQTT", "mqtts", "SCHEME_NATS", "tls", "SCHEME_HTTP", "https"),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			doc := strings.Replace(r.Replace(permanentDoc), "DATA", filepath.Join(dir, name), 1)
			cfg, err := Parse("x.yaml", []byte(doc), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			opts, err := cfg.Build(slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer releaseAll(opts.Sinks)
			for _, s := range opts.Sinks {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := s.Sink.Connect(ctx)
				cancel()
				if !errors.Is(err, pipeline.ErrPermanent) {
					t.Errorf("%s: Connect = %v, want pipeline.ErrPermanent", s.Name, err)
				}
				ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
				_ = s.Sink.Close(ctx)
				cancel()
			}
		})
	}
}
