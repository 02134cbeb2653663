package api

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
)

// BenchmarkListener measures one keep-alive GET /healthz through the whole
// listener (connection limiter, guard, TLS when on) on 127.0.0.1; plain vs
// tls is the cost of encryption per request once the connection is up,
// tls-handshake-each a new connection (full handshake) per request.
func BenchmarkListener(b *testing.B) {
	pki := tlstest.Generate(b, b.TempDir())
	for _, mode := range []string{"plain", "tls", "tls-handshake-each"} {
		withTLS := mode != "plain"
		b.Run(mode, func(b *testing.B) {
			opts := Options{Status: &fakeStatus{}}
			client := &http.Client{Transport: &http.Transport{}}
			if withTLS {
				tl, err := LoadTLS(TLSOptions{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				opts.TLS = tl
				ca, _ := os.ReadFile(pki.CA)
				roots := x509.NewCertPool()
				roots.AppendCertsFromPEM(ca)
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots},
					DisableKeepAlives: mode == "tls-handshake-each"}
			}
			base := serveB(b, opts)
			defer client.CloseIdleConnections()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := client.Get(base + "/healthz")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkGuard is the guard's own cost per request (Host, Origin and
// headers), handler called directly.
func BenchmarkGuard(b *testing.B) {
	for _, hosts := range [][]string{nil, {"weir.plant.local", "*.edge.example"}} {
		name := map[bool]string{true: "no-host-check", false: "host-check"}[hosts == nil]
		b.Run(name, func(b *testing.B) {
			h := New(Options{Status: &fakeStatus{}, AllowedHosts: hosts}).Handler()
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			req.Host = "gw1.edge.example:8443"
			req.Header.Set("Origin", "https://gw1.edge.example:8443")
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
