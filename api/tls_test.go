package api

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
	"github.com/weir-edge/weir/security"
)

// The self-signed certificate is made once, with the names asked for, a
// private key and a private directory, and reused at the next start (same
// fingerprint); a new name or a near expiry replaces it.
func TestSelfSignedCreatedOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	names, ips := []string{"gw1", "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP("10.1.2.3")}
	extra := []net.IP{net.ParseIP("172.17.0.1")}
	first, err := EnsureSelfSigned(dir, CertSubject{Names: names, IPs: ips, ExtraIPs: extra}, now)
	if err != nil || !first.Created {
		t.Fatalf("first: %+v %v", first, err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, first.KeyFile: 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v (%v), want %04o", path, fi.Mode().Perm(), err, want)
		}
	}
	tl, err := LoadTLS(TLSOptions{CertFile: first.CertFile, KeyFile: first.KeyFile}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := tl.Leaf()
	if leaf.PublicKeyAlgorithm != x509.ECDSA || len(leaf.DNSNames) != 2 || len(leaf.IPAddresses) != 3 {
		t.Fatalf("leaf: %v %v %v", leaf.PublicKeyAlgorithm, leaf.DNSNames, leaf.IPAddresses)
	}
	fp := tl.Fingerprint()
	if len(fp) != 32*3-1 {
		t.Fatalf("fingerprint %q", fp)
	}

	// An interface gone (ExtraIPs) does not replace the certificate.
	again, err := EnsureSelfSigned(dir, CertSubject{Names: names, IPs: ips}, now.Add(time.Hour))
	if err != nil || again.Created {
		t.Fatalf("second start: %+v %v, want the same certificate", again, err)
	}
	if tl2, _ := LoadTLS(TLSOptions{CertFile: again.CertFile, KeyFile: again.KeyFile}, nil, nil); tl2.Fingerprint() != fp {
		t.Fatal("fingerprint changed on reuse")
	}
	for name, call := range map[string]func() (SelfSigned, error){
		"new name": func() (SelfSigned, error) {
			return EnsureSelfSigned(dir, CertSubject{Names: append(names, "gw1.plant"), IPs: ips}, now)
		},
		"near expiry": func() (SelfSigned, error) {
			return EnsureSelfSigned(dir, CertSubject{Names: names, IPs: ips}, now.Add(selfSignedLifetime-time.Hour))
		},
	} {
		got, err := call()
		if err != nil || !got.Created || got.Why == "" {
			t.Errorf("%s: %+v %v, want a new certificate and why", name, got, err)
		}
	}
}

// A changed certificate is picked up on the next look at the files; a
// broken one is reported and the previous pair stays in use.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	aCert, aKey := tlstest.SelfSigned(t, dir, "a", now.Add(-time.Hour), now.Add(time.Hour))
	bCert, bKey := tlstest.SelfSigned(t, dir, "b", now.Add(-time.Hour), now.Add(time.Hour))
	cert, key := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	install := func(c, k string, at time.Time) {
		t.Helper()
		for src, dst := range map[string]string{c: cert, k: key} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(dst, at, at); err != nil { // a new mtime even within one clock tick
				t.Fatal(err)
			}
		}
	}
	install(aCert, aKey, now)
	ev := newEvents()
	var published [][]byte
	tl, err := LoadTLS(TLSOptions{CertFile: cert, KeyFile: key, OnLoad: func(p []byte) { published = append(published, p) }},
		slog.New(slog.DiscardHandler), ev)
	if err != nil {
		t.Fatal(err)
	}
	fpA := tl.Fingerprint()
	hello := &tls.ClientHelloInfo{}

	if changed, err := tl.Reload(); changed || err != nil {
		t.Fatalf("unchanged files: %v %v", changed, err)
	}
	install(bCert, bKey, now.Add(time.Minute))
	// Within ReloadCheck a handshake does not look at the files.
	tl.lastCheck = tl.now()
	tl.now = func() time.Time { return tl.lastCheck.Add(time.Millisecond) }
	if c, _ := tl.getCertificate(hello); Fingerprint(c.Certificate[0]) != fpA {
		t.Fatal("reloaded within the check interval")
	}
	// After it, the handshake loads the new pair.
	tl.now = func() time.Time { return tl.lastCheck.Add(2 * time.Second) }
	c, _ := tl.getCertificate(hello)
	fpB := Fingerprint(c.Certificate[0])
	if fpB == fpA || tl.Fingerprint() != fpB || len(published) != 2 {
		t.Fatalf("after the change: %s (was %s), published %d", fpB, fpA, len(published))
	}

	// Half a rotation: a new certificate whose key is not there yet.
	install(aCert, bKey, now.Add(2*time.Minute))
	if changed, err := tl.Reload(); changed || err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched pair: %v %v", changed, err)
	}
	if tl.Fingerprint() != fpB || tl.ReloadFailures() != 1 {
		t.Fatalf("after a failed reload: serving %s, failures %d", tl.Fingerprint(), tl.ReloadFailures())
	}
	if got := ev.waitFor(t, security.CertReloadFailed); got.Outcome != "failed" {
		t.Fatalf("event %+v", got)
	}
	// The same broken files are not retried on every handshake.
	if _, err := tl.Reload(); err != nil {
		t.Fatalf("retried the same broken files: %v", err)
	}
	install(aCert, aKey, now.Add(3*time.Minute))
	if changed, err := tl.Reload(); !changed || err != nil || tl.Fingerprint() != fpA {
		t.Fatalf("completed rotation: %v %v", changed, err)
	}
}

// Client certificates: verified against client_ca when given (the
// authenticator reads r.TLS.VerifiedChains), not required, and a
// certificate the CA did not issue fails the handshake and is reported as
// CertRejected.
func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	pki := tlstest.Generate(t, dir)
	now := time.Now()
	rogueCert, rogueKey := tlstest.SelfSigned(t, dir, "rogue", now.Add(-time.Hour), now.Add(time.Hour))
	ev := newEvents()
	tl, err := LoadTLS(TLSOptions{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCA: pki.CA}, nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, Options{Status: &fakeStatus{}, TLS: tl, Events: ev, Extra: func(mux *http.ServeMux) {
		mux.HandleFunc("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
				io.WriteString(w, "anonymous")
				return
			}
			io.WriteString(w, r.TLS.VerifiedChains[0][0].Subject.CommonName)
		})
	}})
	caPEM, _ := os.ReadFile(pki.CA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := func(certFile, keyFile string) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if certFile != "" {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			// Sent whatever the server's list of acceptable CAs says, as
			// an attacker would.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	}
	for name, c := range map[string]*http.Client{"no certificate": client("", ""), "ca-issued": client(pki.ClientCert, pki.ClientKey)} {
		resp, err := c.Get(base + "/api/v1/whoami")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := map[string]string{"no certificate": "anonymous", "ca-issued": "weir-test-client"}[name]
		if string(body) != want || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s: %q (HSTS %q), want %q", name, body, resp.Header.Get("Strict-Transport-Security"), want)
		}
	}
	if _, err := client(rogueCert, rogueKey).Get(base + "/api/v1/whoami"); err == nil {
		t.Fatal("a certificate client_ca did not issue was accepted")
	}
	rej := ev.waitFor(t, security.CertRejected)
	if rej.Remote == "" || !strings.Contains(rej.Detail, "client certificate rejected") {
		t.Fatalf("CertRejected event = %+v", rej)
	}
	// TLS 1.1 is refused.
	old := &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}
	if c, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), old); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}
