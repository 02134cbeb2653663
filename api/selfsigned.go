package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Self-signed certificate files, in the directory given to
// EnsureSelfSigned (the CLI uses DATA_DIR/tls).
const (
	SelfSignedCert = "self-signed.crt"
	SelfSignedKey  = "self-signed.key"
)

// selfSignedLifetime is how long a generated certificate is valid; it is
// replaced at a start within selfSignedRenew of its end.
const (
	selfSignedLifetime = 2 * 365 * 24 * time.Hour
	selfSignedRenew    = 30 * 24 * time.Hour
)

// SelfSigned is the outcome of EnsureSelfSigned.
type SelfSigned struct {
	CertFile, KeyFile string
	// Created is true when a new certificate was written this time (the
	// first start, or the old one expired or lacked a name now needed).
	Created bool
	// Why says why a new one was made, for the log.
	Why string
}

// CertSubject says what a self-signed certificate names: Names and IPs
// must all be in a certificate for it to be reused; ExtraIPs (the
// addresses of every interface, for a listener on all of them) are put in
// a new one but do not cause one, so that an interface coming or going
// (a VPN, a container bridge) does not change the fingerprint.
type CertSubject struct {
	Names    []string
	IPs      []net.IP
	ExtraIPs []net.IP
}

// EnsureSelfSigned returns a self-signed certificate (ECDSA P-256) for
// subject in dir, generating it on the first call and reusing it
// afterwards, so that clients which pinned its fingerprint keep trusting
// it. It is generated again when it expires within 30 days, does not load,
// or lacks one of the required names or addresses (the listen address
// changed). dir is created 0700, the key written 0600, atomically.
func EnsureSelfSigned(dir string, subject CertSubject, now time.Time) (SelfSigned, error) {
	out := SelfSigned{CertFile: filepath.Join(dir, SelfSignedCert), KeyFile: filepath.Join(dir, SelfSignedKey)}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return out, fmt.Errorf("http tls: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return out, fmt.Errorf("http tls: %w", err)
	}
	why := "none yet"
	if pair, err := tls.LoadX509KeyPair(out.CertFile, out.KeyFile); err == nil {
		why = reuseProblem(pair.Leaf, subject.Names, subject.IPs, now)
		if why == "" {
			return out, nil
		}
	} else if !os.IsNotExist(err) {
		why = "the old one does not load"
	}
	ips := append(append([]net.IP{}, subject.IPs...), subject.ExtraIPs...)
	certPEM, keyPEM, err := generateSelfSigned(subject.Names, dedupIPs(ips), now)
	if err != nil {
		return out, err
	}
	// Key first: a crash in between leaves a pair that does not match,
	// which the next start replaces.
	if err := writeAtomic(out.KeyFile, keyPEM, 0o600); err != nil {
		return out, err
	}
	if err := writeAtomic(out.CertFile, certPEM, 0o600); err != nil {
		return out, err
	}
	out.Created, out.Why = true, why
	return out, nil
}

// reuseProblem says why a certificate cannot be kept, "" when it can.
func reuseProblem(leaf *x509.Certificate, names []string, ips []net.IP, now time.Time) string {
	if leaf == nil {
		return "the old one does not parse"
	}
	if now.Add(selfSignedRenew).After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return "the old one expires on " + leaf.NotAfter.UTC().Format(time.DateOnly)
	}
	for _, n := range names {
		if !slices.Contains(leaf.DNSNames, n) {
			return "the old one does not name " + n
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return "the old one does not name " + ip.String()
		}
	}
	return ""
}

func generateSelfSigned(names []string, ips []net.IP, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("http tls: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("http tls: serial: %w", err)
	}
	cn := "weir"
	if len(names) > 0 {
		cn = "weir " + names[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Weir self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("http tls: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("http tls: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory, so a reader sees the old content or the new, never half.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("http tls: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("http tls: write %s: %w", path, err)
	}
	return nil
}

func dedupIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}
