package cli

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/gateway"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/security/sectest"
)

// eventList records the security events a test looks at.
type eventList = sectest.Recorder

// The CLI's client trusts the certificate a gateway published in its data
// dir, and only that one: a default client refuses the self-signed API.
func TestAPIClientTrustsPublishedCertificate(t *testing.T) {
	dataDir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// As the gateway does (gateway.prepareAPI): a self-signed certificate,
	// published as DATA_DIR/tls/api.crt.
	dir := filepath.Join(dataDir, gateway.APITLSDir)
	ss, err := api.EnsureSelfSigned(dir, api.CertSubject{Names: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, time.Now())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	tlsCfg, err := api.LoadTLS(api.TLSOptions{CertFile: ss.CertFile, KeyFile: ss.KeyFile, OnLoad: func(chain []byte) {
		if err := gateway.WriteFileAtomic(filepath.Join(dir, gateway.APICertFile), chain, 0o600); err != nil {
			t.Error(err)
		}
	}}, testLogger(t), security.Discard)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	served := struct{ url string }{"https://" + ln.Addr().String()}
	srv := api.New(api.Options{Status: readyStatus{}, TLS: tlsCfg})
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
