package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
)

// ExpiryWarning is how long before a certificate expires `weir validate`
// starts warning about it.
const ExpiryWarning = 30 * 24 * time.Hour

// Check reads the files the block names, as Load will at connect time, and
// reports what can never work (each as a conf.FieldError at ca_file,
// cert_file or key_file): a file missing, unreadable or not PEM, a key that
// does not belong to the certificate, a certificate expired or not yet
// valid at now. A certificate expiring within ExpiryWarning, or a key file
// other users may read, is a conf.Warning. Validate stays free of I/O; this
// is the separate pass `weir validate` runs unless told -offline.
func (c *Config) Check(now time.Time) error {
	var errs conf.Errors
	if c.CAFile != "" {
		errs.AddPrefixed("ca_file", checkCA(c.CAFile, now))
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return errs.Err() // Validate reports the missing half
	}
	certPEM, _, err := conf.ReadFile("certificate file", c.CertFile)
	if err != nil {
		errs.AddPrefixed("cert_file", err)
	}
	keyPEM, keyInfo, kerr := conf.ReadFile("key file", c.KeyFile)
	if kerr != nil {
		errs.AddPrefixed("key_file", kerr)
	}
	if err != nil || kerr != nil {
		return errs.Err()
	}
	certs, err := parseCerts(certPEM)
	switch {
	case err != nil:
		errs.Addf("cert_file", "%s: %v", c.CertFile, err)
	case len(certs) == 0:
		errs.Addf("cert_file", "%s holds no PEM certificate", c.CertFile)
	default:
		errs.AddPrefixed("cert_file", checkValidity(c.CertFile, certs[0].NotBefore, certs[0].NotAfter, now))
	}
	if !hasPrivateKey(keyPEM) {
		errs.Addf("key_file", "%s holds no PEM private key", c.KeyFile)
	} else if len(certs) > 0 {
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			if strings.Contains(err.Error(), "does not match") {
				errs.Addf("key_file", "%s does not match the certificate in %s", c.KeyFile, c.CertFile)
			} else {
				errs.Addf("key_file", "%s: the private key cannot be parsed", c.KeyFile)
			}
		}
	}
	errs.AddPrefixed("key_file", conf.TooOpen("key file", c.KeyFile, keyInfo))
	return errs.Err()
}

// checkCA reads a CA bundle. It is an error only when every certificate in
// it has expired: system-style bundles often carry a few old roots.
func checkCA(file string, now time.Time) error {
	b, _, err := conf.ReadFile("CA file", file)
	if err != nil {
		return err
	}
	certs, err := parseCerts(b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(certs) == 0 {
		return fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	last := certs[0]
	for _, c := range certs[1:] {
		if c.NotAfter.After(last.NotAfter) {
			last = c
		}
	}
	return checkValidity(file, last.NotBefore, last.NotAfter, now)
}

// hasPrivateKey reports whether a PEM file holds a private key block
// (openssl may write an EC PARAMETERS block before it).
func hasPrivateKey(data []byte) bool {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return false
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return true
		}
	}
}

// parseCerts returns the CERTIFICATE blocks of a PEM file, other blocks
// skipped as crypto/tls does.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return certs, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", n, err)
		}
		certs = append(certs, c)
		n++
	}
}

func checkValidity(file string, notBefore, notAfter, now time.Time) error {
	const day = "2006-01-02"
	switch {
	case now.After(notAfter):
		return fmt.Errorf("certificate %s expired on %s", file, notAfter.UTC().Format(day))
	case now.Before(notBefore):
		return fmt.Errorf("certificate %s is not valid before %s (is this machine's clock right?)", file, notBefore.UTC().Format(day))
	case notAfter.Sub(now) < ExpiryWarning:
		days := int(notAfter.Sub(now) / (24 * time.Hour))
		return &conf.Warning{Err: fmt.Errorf("certificate %s expires in %d day(s), on %s", file, days, notAfter.UTC().Format(day))}
	}
	return nil
}
