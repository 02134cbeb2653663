package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"os"

	"github.com/weir-edge/weir/internal/conf"
)

//go:embed sample.yaml
var sampleFS embed.FS

// SampleConfig is a complete example of the block, shown by the CLI.
var SampleConfig = mustRead("sample.yaml")

func mustRead(name string) string {
	b, err := sampleFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Config is the TLS block every network client and server embeds under the
// key `tls`. The zero value means "no TLS settings".
type Config struct {
	// Enabled turns TLS on. Components may also turn it on by other means
	// (an mqtts:// URL); the remaining settings apply either way.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle: for a client the roots that verify the
	// server (default: the system pool); for a server the roots that verify
	// client certificates, which are then required.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM certificate (chain) and its key: the
	// client certificate for mTLS, or the server's certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verified in the server certificate
	// (default: the host dialled).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables server certificate verification. For
	// commissioning only: it allows any man in the middle.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// Validate checks the block as written, without reading any file.
func (c *Config) Validate() error {
	var errs conf.Errors
	if c.CertFile != "" && c.KeyFile == "" {
		errs.Addf("key_file", "is required when cert_file is set")
	}
	if c.KeyFile != "" && c.CertFile == "" {
		errs.Addf("cert_file", "is required when key_file is set")
	}
	if _, err := parseVersion(c.MinVersion); err != nil {
		errs.Add(&conf.FieldError{Path: "min_version", Err: err})
	}
	return errs.Err()
}

func parseVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q is not a supported TLS version (1.2 or 1.3)", v)
}

// Load builds a client-side tls.Config, reading the CA bundle and the
// client key pair from disk. Components call it at connect time, not at
// construction, so that rotated certificates are picked up on reconnect.
// Its errors wrap pipeline.ErrPermanent: a missing or invalid file will
// not be fixed by retrying.
func (c *Config) Load() (*tls.Config, error) {
	tc, err := c.load()
	return tc, conf.Permanent(err)
}

func (c *Config) load() (*tls.Config, error) {
	minV, err := parseVersion(c.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	tc := &tls.Config{
		MinVersion:         minV,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // explicit, documented opt-in
	}
	if c.CAFile != "" {
		if tc.RootCAs, err = loadPool(c.CAFile); err != nil {
			return nil, err
		}
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load key pair %s: %w", c.CertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// LoadServer builds a server-side tls.Config: cert_file and key_file are
// required; with ca_file, clients must present a certificate it verifies
// (mTLS). server_name and insecure_skip_verify do not apply to servers.
// Its errors wrap pipeline.ErrPermanent, as Load's do.
func (c *Config) LoadServer() (*tls.Config, error) {
	tc, err := c.loadServer()
	return tc, conf.Permanent(err)
}

func (c *Config) loadServer() (*tls.Config, error) {
	minV, err := parseVersion(c.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("tls: a server needs cert_file and key_file")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load key pair %s: %w", c.CertFile, err)
	}
	tc := &tls.Config{MinVersion: minV, Certificates: []tls.Certificate{cert}}
	if c.CAFile != "" {
		if tc.ClientCAs, err = loadPool(c.CAFile); err != nil {
			return nil, err
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: read ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: ca_file %s holds no PEM certificate", file)
	}
	return pool, nil
}
