package opcua

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// errUntrusted is returned when the server's certificate is not in the
// trust list. The session is retried with backoff, so moving the rejected
// file to trusted/ takes effect without a restart.
var errUntrusted = errors.New("server certificate is not trusted")

// pki is the client's certificate store, laid out as OPC UA applications
// usually do: own/ (cert.pem, key.pem), trusted/, rejected/.
type pki struct {
	dir string
	log *slog.Logger
}

func (p pki) own() string      { return filepath.Join(p.dir, "own") }
func (p pki) trusted() string  { return filepath.Join(p.dir, "trusted") }
func (p pki) rejected() string { return filepath.Join(p.dir, "rejected") }

// ownCert loads the application instance certificate, creating a
// self-signed one on first start. The key file is written 0600.
func (p pki) ownCert(appURI string) (der []byte, key *rsa.PrivateKey, err error) {
	certPath, keyPath := filepath.Join(p.own(), "cert.pem"), filepath.Join(p.own(), "key.pem")
	if _, err := os.Stat(certPath); err == nil {
		der, err := readCert(certPath)
		if err != nil {
			return nil, nil, err
		}
		key, err := readKey(keyPath)
		if err != nil {
			return nil, nil, err
		}
		return der, key, nil
	}
	for _, d := range []string{p.own(), p.trusted(), p.rejected()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, fmt.Errorf("pki: %w", err)
		}
	}
	der, key, err = newSelfSigned(appURI, "Weir OPC UA client")
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate certificate: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	p.log.Info("created application instance certificate", "cert", certPath, "application_uri", appURI)
	return der, key, nil
}

// newSelfSigned makes an RSA-2048 application instance certificate valid
// for 10 years with the application URI in subjectAltName, as Part 6 §6.2.2
// requires, and this host's names so servers that check them are content.
func newSelfSigned(appURI, cn string) ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(appURI)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	dns := []string{"localhost"}
	if host != "" && host != "localhost" {
		dns = append(dns, host)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Weir"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              dns,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return der, key, err
}

// checkServer accepts der if it is in trusted/; otherwise it writes it to
// rejected/ and says how to trust it. With autoTrustFirst and an empty
// trusted/ the first certificate is trusted and logged (trust on first
// use). A certificate outside its validity period is refused even when
// trusted.
func (p pki) checkServer(der []byte, autoTrustFirst bool) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	now := time.Now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("server certificate %q is valid from %s to %s only", cert.Subject.CommonName,
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	for _, d := range []string{p.trusted(), p.rejected()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	trusted, err := os.ReadDir(p.trusted())
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	certs := 0
	for _, e := range trusted {
		if e.IsDir() {
			continue
		}
		t, err := readCert(filepath.Join(p.trusted(), e.Name()))
		if err != nil {
			p.log.Warn("ignoring unreadable file in trusted/", "file", e.Name(), "error", err)
			continue
		}
		certs++
		if bytes.Equal(t, der) {
			return nil
		}
	}
	name := certFileName(cert, der)
	if autoTrustFirst && certs == 0 {
		path := filepath.Join(p.trusted(), name)
		if err := os.WriteFile(path, der, 0o600); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		p.log.Warn("trusted the server certificate on first use (auto_trust_first)", "file", path, "subject", cert.Subject.CommonName)
		return nil
	}
	path := filepath.Join(p.rejected(), name)
	if err := os.WriteFile(path, der, 0o600); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	p.log.Error("server certificate rejected: not in the trust list; to trust it, move the file to trusted/",
		"file", path, "move_to", p.trusted(), "subject", cert.Subject.CommonName, "thumbprint", thumbprint(der))
	return fmt.Errorf("%w: %q (moved to %s)", errUntrusted, cert.Subject.CommonName, path)
}

// certFileName follows the usual OPC UA store naming, "<CN> [<sha1>].der",
// without the spaces and brackets that trip up shells.
func certFileName(cert *x509.Certificate, der []byte) string {
	cn := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, cert.Subject.CommonName)
	if cn == "" {
		cn = "server"
	}
	return cn + "_" + thumbprint(der) + ".der"
}

func thumbprint(der []byte) string {
	s := sha1.Sum(der)
	return hex.EncodeToString(s[:])
}

// readCert reads a DER or PEM certificate file and returns the DER bytes.
func readCert(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// readKey reads a PEM RSA private key (PKCS #1 or PKCS #8).
func readKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", path)
	}
	return rk, nil
}
