package hub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files of the generated TLS material (tls_auto), under DATA_DIR/tls.
const (
	tlsDir     = "tls"
	caFile     = "ca.pem" // give this to sites: they pin it
	caKeyFile  = "ca-key.pem"
	certFile   = "server.pem"
	keyFile    = "server-key.pem"
	tlsAutoTTL = 2 * 365 * 24 * time.Hour
)

// CAPath is the CA file sites pin when the hub made its own (tls_auto).
func CAPath(dataDir string) string { return filepath.Join(dataDir, tlsDir, caFile) }

// ensureAutoTLS makes, once, a private CA and a server certificate for
// hosts (plus localhost and 127.0.0.1) in DATA_DIR/tls, and points cfg at
// them. For a demo or a closed network: production brings its own
// certificate (tls_cert, tls_key).
func ensureAutoTLS(cfg *Config, hosts []string) error {
	dir := filepath.Join(cfg.DataDir, tlsDir)
	cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	if _, err := os.Stat(cfg.TLSCert); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("hub tls: %w", err)
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "weir hub CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(tlsAutoTTL), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, MaxPathLenZero: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("hub tls: CA: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "weir hub"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(tlsAutoTTL),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("hub tls: server certificate: %w", err)
	}
	caKeyDER, _ := x509.MarshalECPrivateKey(caKey)
	srvKeyDER, _ := x509.MarshalECPrivateKey(srvKey)
	for _, f := range []struct {
		name, typ string
		der       []byte
	}{{caKeyFile, "EC PRIVATE KEY", caKeyDER}, {caFile, "CERTIFICATE", caDER}, {keyFile, "EC PRIVATE KEY", srvKeyDER}, {certFile, "CERTIFICATE", der}} {
		if err := writeReplace(filepath.Join(dir, f.name), pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// CAFingerprint is the SHA-256 of the CA certificate's DER, to compare
// out of band with what a site pinned.
func CAFingerprint(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return "", fmt.Errorf("%s: no PEM certificate", path)
	}
	sum := sha256.Sum256(b.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
