package cli

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/gateway"
)

// apiClient is the HTTP client the CLI talks to a running gateway with.
// Besides the system roots it trusts the certificate a gateway published
// in its data dir (DATA_DIR/tls/api.crt: the self-signed one, or the
// configured chain), so https:// in api.url works without switching
// verification off. dataDir "" looks where apiURL looks.
func apiClient(dataDir string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: apiTransport(dataDir)}
}

// apiTransport is apiClient's transport, for callers that wrap it (to add
// a token).
func apiTransport(dataDir string) *http.Transport {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	dirs := []string{dataDir}
	if dataDir == "" {
		dirs = []string{config.DefaultDataDir}
		if demo, err := demoDataDir(); err == nil {
			dirs = append(dirs, demo)
		}
	}
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, gateway.APITLSDir, gateway.APICertFile)); err == nil {
			pool.AppendCertsFromPEM(b)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr
}
