package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
	"github.com/weir-edge/weir/sinks/sinktest"
)

// TestTLSDialCountsWireBytes: the sink does its own TLS handshake (franz-go
// takes a dialer or a TLS config, not both), so a TLS broker must still be
// reached and verified, and wire_bytes, counted under TLS, exceeds the
// records' bytes. A wrong CA must fail to connect.
func TestTLSDialCountsWireBytes(t *testing.T) {
	files := tlstest.Generate(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	topic := "weir-test-" + uniqueName(t)
	cl := startCluster(t, 1, []string{topic}, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	rd := newReader(t, cl.addr(), topic, false, kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))

	tests := []struct {
		name    string
		ca      string
		wantErr bool
	}{
		{"right CA", files.CA, false},
		{"other CA", files.OtherCA, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(cl.addr(), topic, ModeSample)
			cfg.TLS = tlsconf.Config{Enabled: true, CAFile: tt.ca}
			if tt.wantErr {
				s, err := New(cfg, discard())
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := s.Connect(ctx); err == nil {
					_ = s.Close(ctx)
					t.Fatal("Connect with a CA that did not sign the broker's certificate succeeded")
				}
				return
			}
			s := connected(t, cfg)
			batch := sinktest.Batch("tls", 3, 20, 1)
			before := s.Status().Counters["wire_bytes"]
			if err := write(t, s, batch); err != nil {
				t.Fatalf("Write over TLS: %v", err)
			}
			grew := s.Status().Counters["wire_bytes"] - before
			var payload int
			for _, sm := range batch {
				payload += len(sm.Path) // a lower bound of each record's key and value
			}
			if grew < uint64(payload) {
				t.Errorf("wire_bytes grew by %d over a TLS Write, less than the %d bytes of the paths alone", grew, payload)
			}
			deadline := time.Now().Add(2 * time.Minute)
			for len(rd.samples(t)) < len(batch) {
				if time.Now().After(deadline) {
					t.Fatalf("timed out reading the %d samples back over TLS", len(batch))
				}
				time.Sleep(20 * time.Millisecond) // polling the broker, not synchronising
			}
		})
	}
}
