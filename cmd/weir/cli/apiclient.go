package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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

// gatewayTarget is how a CLI command reaches a running gateway: the
// context carrying the token (-token-file, $WEIR_TOKEN, DATA_DIR/auth/
// cli-token), the API's base URL (-api, or the address the gateway wrote
// in its data dir) and a client that trusts its published certificate.
// cmd names the command in the usage message.
func gatewayTarget(ctx context.Context, cmd, apiFlag, dataDir, tokenFile string, timeout time.Duration, stderr io.Writer) (context.Context, *url.URL, *http.Client, error) {
	ctx, err := withClientToken(ctx, tokenFile, dataDir)
	if err != nil {
		return ctx, nil, nil, err
	}
	u, err := apiURL(apiFlag, dataDir)
	if err != nil {
		return ctx, nil, nil, err
	}
	base, err := url.Parse(strings.TrimRight(u, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		fmt.Fprintf(stderr, "%s: -api must be an http:// or https:// URL, got %q\n", cmd, u)
		return ctx, nil, nil, errUsage
	}
	return ctx, base, apiClient(dataDir, timeout), nil
}
