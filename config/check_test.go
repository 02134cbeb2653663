package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
)

// checkDoc is a valid configuration whose secrets and TLS files are named
// through variables, so that each test case points them at a different
// mistake. ${DIR} is the test's directory.
const checkDoc = `node: {id: edge-01}
sources:
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
    mqtt:
      url: mqtts://broker.acme.example:8883
      client_id: edge-01
      username: edge-01
      password: {env: ${PW_ENV:-WEIR_TEST_MQTT_PASSWORD}}
      tls:
        ca_file: ${DIR}/${CA:-ca}.pem
        cert_file: ${DIR}/${CERT:-client}.pem
        key_file: ${DIR}/${KEY:-client}-key.pem
  - name: api
    http:
      url: https://ingest.acme.example/v1
      auth_header: {name: X-Token, value: {file: "${DIR}/${TOKEN:-token}"}}
`

// The I/O pass finds every secret and TLS file in the decoded config and
// reports each mistake at file:line: key, in the operator's words.
func TestInspectChecksSecretsAndTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tlstest.SelfSigned(t, dir, "ca", now.Add(-day), now.Add(365*day))
	tlstest.SelfSigned(t, dir, "client", now.Add(-day), now.Add(365*day))
	tlstest.SelfSigned(t, dir, "other", now.Add(-day), now.Add(365*day))
	tlstest.SelfSigned(t, dir, "expired", now.Add(-90*day), now.Add(-3*day))
	tlstest.SelfSigned(t, dir, "soon", now.Add(-90*day), now.Add(20*day+time.Hour))
	write := func(name, content string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("token", "t0ken\n", 0o600)
	write("empty", "\n", 0o600)
	write("open", "t0ken\n", 0o644)
	write("not-pem.pem", "-----BEGIN NOTHING-----\n", 0o644)
	t.Setenv("WEIR_TEST_MQTT_PASSWORD", "pw")
	t.Setenv("WEIR_TEST_EMPTY_PASSWORD", "")

	tests := []struct {
		name string
		env  map[string]string
		want []string // without the "x.yaml:" prefix
	}{
		{"everything right", nil, nil},
		{"missing env secret", map[string]string{"PW_ENV": "WEIR_TEST_SURELY_UNSET"},
			[]string{"19: sinks[0].mqtt.password: environment variable WEIR_TEST_SURELY_UNSET is not set"}},
		{"empty env secret", map[string]string{"PW_ENV": "WEIR_TEST_EMPTY_PASSWORD"},
			[]string{"19: sinks[0].mqtt.password: environment variable WEIR_TEST_EMPTY_PASSWORD is empty"}},
		{"missing secret file", map[string]string{"TOKEN": "nope"},
			[]string{"27: sinks[1].http.auth_header.value: secret file " + dir + "/nope does not exist"}},
		{"empty secret file", map[string]string{"TOKEN": "empty"},
			[]string{"27: sinks[1].http.auth_header.value: secret file " + dir + "/empty is empty"}},
		{"world-readable secret file", map[string]string{"TOKEN": "open"},
			[]string{"27: sinks[1].http.auth_header.value: warning: secret file " + dir + "/open is accessible by other users (mode 0644); make it private with chmod 600"}},
		{"missing CA file", map[string]string{"CA": "missing"},
			[]string{"21: sinks[0].mqtt.tls.ca_file: CA file " + dir + "/missing.pem does not exist"}},
		{"CA file not PEM", map[string]string{"CA": "not-pem"},
			[]string{"21: sinks[0].mqtt.tls.ca_file: CA file " + dir + "/not-pem.pem holds no PEM certificate"}},
		{"key not matching cert", map[string]string{"KEY": "other"},
			[]string{"23: sinks[0].mqtt.tls.key_file: " + dir + "/other-key.pem does not match the certificate in " + dir + "/client.pem"}},
		{"expired cert", map[string]string{"CERT": "expired", "KEY": "expired"},
			[]string{"22: sinks[0].mqtt.tls.cert_file: certificate " + dir + "/expired.pem expired on 2027-02-26"}},
		{"cert expiring within 30 days", map[string]string{"CERT": "soon", "KEY": "soon"},
			[]string{"22: sinks[0].mqtt.tls.cert_file: warning: certificate " + dir + "/soon.pem expires in 20 day(s), on 2027-03-21"}},
		{"every problem at once", map[string]string{"PW_ENV": "WEIR_TEST_SURELY_UNSET", "CA": "not-pem", "KEY": "other", "TOKEN": "empty"},
			[]string{
				"19: sinks[0].mqtt.password: environment variable WEIR_TEST_SURELY_UNSET is not set",
				"21: sinks[0].mqtt.tls.ca_file: CA file " + dir + "/not-pem.pem holds no PEM certificate",
				"23: sinks[0].mqtt.tls.key_file: " + dir + "/other-key.pem does not match the certificate in " + dir + "/client.pem",
				"27: sinks[1].http.auth_header.value: secret file " + dir + "/empty is empty",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DIR": dir}
			for k, v := range tt.env {
				env[k] = v
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			cfg, ps := Inspect("x.yaml", []byte(checkDoc), Options{Lookup: lookup, Now: func() time.Time { return now }})
			var got []string
			for _, p := range ps {
				got = append(got, strings.TrimPrefix(p.Error(), "x.yaml:"))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("problems:\n got %q\nwant %q", got, tt.want)
			}
			// Warnings do not fail the file; errors do.
			if wantOK := ps.Errors() == 0; (cfg != nil) != wantOK {
				t.Fatalf("config returned = %v, want %v", cfg != nil, wantOK)
			}
		})
	}
}

// Offline, a file written for another machine is checked as written:
// nothing it names is read and its ${NAME} references are not resolved,
// so every mistake above goes unreported while a mistake in the file
// itself is still found.
func TestInspectOffline(t *testing.T) {
	t.Setenv("WEIR_TEST_MQTT_PASSWORD", "") // would be an error online
	called := false
	lookup := func(string) (string, bool) { called = true; return "", false }
	cfg, ps := Inspect("x.yaml", []byte(checkDoc), Options{Offline: true, Lookup: lookup})
	if len(ps) != 0 || cfg == nil {
		t.Fatalf("offline: %v", ps)
	}
	if called {
		t.Fatal("offline looked up the environment")
	}
	bad := strings.Replace(checkDoc, "client_id: edge-01", "client_id: edge-01\n      qos: 3", 1)
	_, ps = Inspect("x.yaml", []byte(bad), Options{Offline: true})
	if ps.Error() != "x.yaml:18: sinks[0].mqtt.qos: 3 is not supported (use 0 or 1)" {
		t.Fatalf("offline problems: %v", ps)
	}
	// Online, the same file needs its variables.
	_, ps = Inspect("x.yaml", []byte(checkDoc), Options{Lookup: lookup})
	if !strings.Contains(ps.Error(), "environment variable DIR is not set") {
		t.Fatalf("online problems: %v", ps)
	}
}

// A value holding an unresolved ${NAME} is unknown offline: what it would
// fail is not reported, whatever its key expects.
func TestOfflineUnknownValues(t *testing.T) {
	doc := strings.NewReplacer(
		"address: 127.0.0.1:5020", "address: ${PLC_ADDR}",
		"address: 0,", "address: ${REG},",
		"url: mqtts://broker.acme.example:8883", "url: ${BROKER_URL}",
		"interval: 1s", "interval: ${POLL}",
	).Replace(checkDoc)
	if _, ps := Inspect("x.yaml", []byte(doc), Options{Offline: true}); len(ps) != 0 {
		t.Fatalf("offline: %v", ps)
	}
	_, err := Parse("x.yaml", []byte(doc), noEnv)
	if err == nil || !strings.Contains(err.Error(), "PLC_ADDR is not set") {
		t.Fatalf("online: %v", err)
	}
}
