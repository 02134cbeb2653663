package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
)

// A listen address other machines can reach never serves plain HTTP unless
// the file says insecure: TLS is on by default there, and switching it off
// needs http.insecure: true.
func TestHTTPValidateInsecure(t *testing.T) {
	off, on := false, true
	tests := []struct {
		name    string
		h       HTTP
		wantErr string // "" = valid
	}{
		{"loopback plain", HTTP{Listen: "127.0.0.1:8080"}, ""},
		{"localhost plain", HTTP{Listen: "localhost:8080"}, ""},
		{"v6 loopback plain", HTTP{Listen: "[::1]:8080"}, ""},
		{"loopback tls off", HTTP{Listen: "127.0.0.1:8080", TLS: HTTPTLS{Enabled: &off}}, ""},
		{"every interface, tls by default", HTTP{Listen: ":8080"}, ""},
		{"every interface, tls off", HTTP{Listen: ":8080", TLS: HTTPTLS{Enabled: &off}}, "http.tls.enabled: false on :8080"},
		{"0.0.0.0, tls off", HTTP{Listen: "0.0.0.0:8080", TLS: HTTPTLS{Enabled: &off}}, "other machines can reach"},
		{"lan ip, tls off", HTTP{Listen: "10.0.0.5:8080", TLS: HTTPTLS{Enabled: &off}}, "http.insecure: true"},
		{"host name, tls off", HTTP{Listen: "gw1:8080", TLS: HTTPTLS{Enabled: &off}}, "http.tls.enabled"},
		{"tls off, insecure", HTTP{Listen: ":8080", Insecure: true, TLS: HTTPTLS{Enabled: &off}}, ""},
		{"tls on, files", HTTP{Listen: ":8443", TLS: HTTPTLS{Enabled: &on, CertFile: "/c.pem", KeyFile: "/k.pem", ClientCA: "/ca.pem"}}, ""},
		{"cert without key", HTTP{Listen: ":8443", TLS: HTTPTLS{CertFile: "/c.pem"}}, "http.tls.key_file: is required"},
		{"tls off with a cert", HTTP{Listen: "127.0.0.1:8080", TLS: HTTPTLS{Enabled: &off, CertFile: "/c.pem", KeyFile: "/k.pem"}}, "http.tls.cert_file: is set but tls.enabled is false"},
		{"allowed hosts", HTTP{Listen: ":8080", AllowedHosts: []string{"gw1.plant.local", "*.plant.local", "10.0.0.5", "[fd00::1]", "GW1."}}, ""},
		{"bad allowed host", HTTP{Listen: ":8080", AllowedHosts: []string{"gw1:8080"}}, "http.allowed_hosts[0]"},
		{"limits", HTTP{Listen: ":8080", MaxConnectionsPerClient: 8, MaxConnections: 100, MaxHeaderBytes: 8192, MaxBodyBytes: 65536}, ""},
		{"negative limit", HTTP{Listen: ":8080", MaxConnections: -1}, "http.max_connections: must be between"},
		{"header limit too small", HTTP{Listen: ":8080", MaxHeaderBytes: 100}, "http.max_header_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errs conf.Errors
			errs.AddPrefixed("http", tt.h.Validate())
			err := errs.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestHTTPTLSOn(t *testing.T) {
	off, on := false, true
	tests := []struct {
		tls            HTTPTLS
		loopback, want bool
	}{
		{HTTPTLS{}, true, false},
		{HTTPTLS{}, false, true},
		{HTTPTLS{CertFile: "/c"}, true, true},
		// client_ca on a loopback listen: mTLS needs TLS, so it is on
		// (before, plain HTTP served and the CA did nothing).
		{HTTPTLS{ClientCA: "/ca"}, true, true},
		{HTTPTLS{ClientCA: "/ca"}, false, true},
		{HTTPTLS{Enabled: &on}, true, true},
		{HTTPTLS{Enabled: &off}, false, false},
	}
	for _, tt := range tests {
		h := HTTP{TLS: tt.tls}
		if got := h.TLSOn(tt.loopback); got != tt.want {
			t.Errorf("%+v loopback=%v: TLSOn = %v, want %v", tt.tls, tt.loopback, got, tt.want)
		}
	}
}

// weir validate reads the certificate files (errors at http.tls.*, the CA
// at client_ca) and warns about plain HTTP allowed by insecure.
func TestHTTPCheck(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	pki := tlstest.Generate(t, dir)
	off := false
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		h    HTTP
		want []string
	}{
		{"good files", HTTP{Listen: ":8443", TLS: HTTPTLS{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCA: pki.CA}}, nil},
		{"missing ca", HTTP{Listen: ":8443", TLS: HTTPTLS{ClientCA: missing}}, []string{"http.tls.client_ca: CA file " + missing + " does not exist"}},
		{"key mismatch", HTTP{Listen: ":8443", TLS: HTTPTLS{CertFile: pki.ServerCert, KeyFile: pki.ClientKey}}, []string{"http.tls.key_file: " + pki.ClientKey + " does not match"}},
		{"insecure warned", HTTP{Listen: ":8080", Insecure: true, TLS: HTTPTLS{Enabled: &off}}, []string{"http.insecure: plain HTTP on :8080"}},
		{"insecure on loopback is quiet", HTTP{Listen: "127.0.0.1:8080", Insecure: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errs conf.Errors
			errs.AddPrefixed("http", tt.h.check(now))
			err := errs.Err()
			if len(tt.want) == 0 {
				// tlstest's certificates live a day: expiry warnings are expected.
				for _, e := range flatten(err) {
					if !conf.IsWarning(e) {
						t.Fatalf("unexpected: %v", e)
					}
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("got %v, want %q", err, w)
				}
			}
			if tt.name == "insecure warned" && !conf.IsWarning(err) {
				t.Fatalf("%v is not a warning", err)
			}
		})
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// api/sample.yaml is a valid http block.
func TestHTTPSample(t *testing.T) {
	data, err := os.ReadFile("../api/sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		HTTP HTTP `yaml:"http"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.HTTP.Listen == "" || doc.HTTP.TLS.ClientCA == "" {
		t.Fatalf("sample decoded to %+v", doc.HTTP)
	}
	if err := doc.HTTP.Validate(); err != nil {
		t.Fatal(err)
	}
}
