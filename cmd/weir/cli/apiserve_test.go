package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/security"
)

type eventList struct {
	mu  sync.Mutex
	evs []security.Event
}

func (l *eventList) Record(_ context.Context, ev security.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

func (l *eventList) count(k security.Kind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

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
			if warned != tt.wantWarn || (ev.count(security.InsecureTransport) == 1) != tt.wantWarn {
				t.Fatalf("warned=%v events=%d, want %v; log:\n%s", warned, ev.count(security.InsecureTransport), tt.wantWarn, logs.String())
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
	tlsDir := filepath.Join(dataDir, apiTLSDir)
	for path, want := range map[string]os.FileMode{tlsDir: 0o700, filepath.Join(tlsDir, api.SelfSignedKey): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v %v, want %04o", path, fi, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(tlsDir, apiCertFile)); err != nil {
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

// The CLI's client trusts the certificate a gateway published in its data
// dir, and only that one: a default client refuses the self-signed API.
func TestAPIClientTrustsPublishedCertificate(t *testing.T) {
	dataDir := t.TempDir()
	on := true
	cfg := &config.Config{DataDir: dataDir, HTTP: config.HTTP{TLS: config.HTTPTLS{Enabled: &on}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served, err := prepareAPI(cfg, ln.Addr(), security.Discard, testLogger(t), io.Discard)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if !strings.HasPrefix(served.url, "https://127.0.0.1:") {
		t.Fatalf("url %s", served.url)
	}
	srv := api.New(api.Options{Status: readyStatus{}, TLS: served.tls, AllowedHosts: served.hosts, Limits: served.limits})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	client := apiClient(dataDir, 0)
	defer client.CloseIdleConnections()
	resp, err := client.Get(served.url + "/healthz")
	if err != nil {
		t.Fatalf("CLI client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("CLI client: %d", resp.StatusCode)
	}
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	if resp, err := plain.Get(served.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a client without the published certificate trusted the self-signed API")
	}
}

type readyStatus struct{}

func (readyStatus) Status() engine.Status { return engine.Status{Ready: true} }

// signalHandler is a slog handler that closes ready when a record with
// message msg is logged, and passes every record to next.
type signalHandler struct {
	slog.Handler
	msg   string
	once  *sync.Once
	ready chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.ready) })
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h signalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return signalHandler{h.Handler.WithAttrs(as), h.msg, h.once, h.ready}
}

func (h signalHandler) WithGroup(g string) slog.Handler {
	return signalHandler{h.Handler.WithGroup(g), h.msg, h.once, h.ready}
}

// The gateway end to end: with http.tls on, it serves HTTPS with a
// self-signed certificate, refuses a rebound Host, and `weir alarms`
// (given only the data dir for trust) talks to it.
func TestGatewayServesHTTPS(t *testing.T) {
	dataDir := t.TempDir()
	doc := `
node: {id: tls-test}
data_dir: ` + dataDir + `
http:
  listen: 127.0.0.1:0
  tls: {enabled: true}
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
  - name: uns
    buffer: {type: memory}
    mqtt: {url: "tcp://127.0.0.1:1", client_id: tls-test}
`
	cfg, err := config.Parse("tls.yaml", []byte(doc), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	log := slog.New(signalHandler{Handler: testLogger(t).Handler(), msg: "http tls: serving HTTPS", once: &sync.Once{}, ready: ready})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runGateway(ctx, cfg, ln, log) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()
	select {
	case <-ready: // the certificate is published; the listener queues connections until Serve runs
	case err := <-done:
		t.Fatalf("gateway stopped: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("gateway did not start its HTTPS API")
	}
	base := "https://" + ln.Addr().String()
	// The API wants a token too: weir alarms finds it in the data dir.
	if err := writeCLIToken(dataDir, viewerToken(t, dataDir)); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runNamed(t.Context(), "alarms", []string{"list", "-api", base, "--data-dir", dataDir}, &out, &errOut); err != nil {
		t.Fatalf("weir alarms list over HTTPS: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "sink_uns_data_loss") {
		t.Fatalf("weir alarms list = %q", out.String())
	}
	client := apiClient(dataDir, 2*time.Minute)
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
	req.Host = "attacker.example"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("rebound Host = %d, want 421", resp.StatusCode)
	}
}
