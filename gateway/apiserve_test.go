package gateway

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/security/sectest"
)

// eventList records the security events a test looks at.
type eventList = sectest.Recorder

// Plain HTTP that other machines can reach is refused at start unless the
// file says insecure — and then warned about, every start. Loopback may
// be plain, quietly.
func TestPrepareAPIPlainHTTP(t *testing.T) {
	off := false
	every := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	lan := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 8080}
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	tests := []struct {
		name     string
		http     config.HTTP
		addr     *net.TCPAddr
		wantErr  string
		wantURL  string
		wantWarn bool
	}{
		{"loopback plain", config.HTTP{}, loop, "", "http://127.0.0.1:8080", false},
		{"every interface, tls off", config.HTTP{TLS: config.HTTPTLS{Enabled: &off}}, every, "http.insecure: true", "", false},
		{"lan ip, tls off", config.HTTP{TLS: config.HTTPTLS{Enabled: &off}}, lan, "other machines can reach it", "", false},
		{"every interface, insecure", config.HTTP{Insecure: true, TLS: config.HTTPTLS{Enabled: &off}}, every, "", "http://127.0.0.1:8080", true},
		{"loopback, insecure", config.HTTP{Insecure: true}, loop, "", "http://127.0.0.1:8080", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{DataDir: t.TempDir(), HTTP: tt.http}
			var logs, stderr bytes.Buffer
			ev := &eventList{}
			got, err := prepareAPI(cfg, tt.addr, ev, slog.New(slog.NewTextHandler(&logs, nil)), &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.url != tt.wantURL || got.tls != nil {
				t.Fatalf("= %+v, %v; want %s", got, err, tt.wantURL)
			}
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "plain HTTP")
			if warned != tt.wantWarn || (ev.Count(security.InsecureTransport) == 1) != tt.wantWarn {
				t.Fatalf("warned=%v events=%d, want %v; log:\n%s", warned, ev.Count(security.InsecureTransport), tt.wantWarn, logs.String())
			}
		})
	}
}

var fingerprintLine = regexp.MustCompile(`SHA-256 fingerprint: ([0-9A-F:]{95})\n`)

// TLS is on by default for a listen address other machines can reach: a
// self-signed certificate is made on the first start (private key, private
// directory), reused at the next one, and its fingerprint printed both
// times; api.url says https.
func TestPrepareAPISelfSigned(t *testing.T) {
	dataDir := t.TempDir()
	cfg := &config.Config{DataDir: dataDir, HTTP: config.HTTP{AllowedHosts: []string{"gw1.plant.local"}}}
	addr := &net.TCPAddr{IP: net.IPv4zero, Port: 8443}
	start := func() (apiServing, string, string) {
		var logs, stderr bytes.Buffer
		got, err := prepareAPI(cfg, addr, security.Discard, slog.New(slog.NewTextHandler(&logs, nil)), &stderr)
		if err != nil {
			t.Fatal(err)
		}
		return got, logs.String(), stderr.String()
	}
	first, logs, stderr := start()
	m := fingerprintLine.FindStringSubmatch(stderr)
	if first.tls == nil || first.url != "https://127.0.0.1:8443" || m == nil || m[1] != first.tls.Fingerprint() {
		t.Fatalf("first start: url %s, stderr %q", first.url, stderr)
	}
	if !strings.Contains(logs, "generated a self-signed certificate") || !strings.Contains(logs, m[1]) {
		t.Fatalf("first start log:\n%s", logs)
	}
	leaf := first.tls.Leaf()
	if !containsString(leaf.DNSNames, "gw1.plant.local") || !containsString(leaf.DNSNames, "localhost") {
		t.Fatalf("certificate names %v", leaf.DNSNames)
	}
	if !containsString(first.hosts, "gw1.plant.local") {
		t.Fatalf("allowed hosts %v", first.hosts)
	}
	tlsDir := filepath.Join(dataDir, APITLSDir)
	for path, want := range map[string]os.FileMode{tlsDir: 0o700, filepath.Join(tlsDir, api.SelfSignedKey): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v %v, want %04o", path, fi, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(tlsDir, APICertFile)); err != nil {
		t.Fatalf("certificate not published for the CLI: %v", err)
	}

	second, logs, stderr := start()
	if second.tls.Fingerprint() != first.tls.Fingerprint() || !strings.Contains(stderr, m[1]) {
		t.Fatalf("second start: %s, stderr %q; want the same certificate, printed again", second.tls.Fingerprint(), stderr)
	}
	if strings.Contains(logs, "generated") {
		t.Fatalf("second start generated again:\n%s", logs)
	}
}
