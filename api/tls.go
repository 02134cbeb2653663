package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/security"
)

// TLSOptions name the files of the API's certificate.
type TLSOptions struct {
	// CertFile (PEM, leaf first, then intermediates) and KeyFile are
	// re-read when either changes (size or modification time), at most
	// once per ReloadCheck, on the next handshake.
	CertFile, KeyFile string
	// ClientCA is a PEM bundle; when set, a client certificate is asked
	// for and, when one is given, verified against it (a connection
	// without one is let through: the authenticator decides). Read once.
	ClientCA string
	// ReloadCheck is how often a handshake may look at the files;
	// default 1s, so a reload costs two stat calls a second at most.
	ReloadCheck time.Duration
	// OnLoad, when set, is called with the certificate chain (PEM) after
	// every successful load, the first one included: the CLI publishes it
	// for local clients to trust.
	OnLoad func(chainPEM []byte)
}

// TLS is the API's server certificate, reloaded when its files change.
// A new pair that does not load is logged, counted and reported as a
// security event, and the previous pair stays in use.
type TLS struct {
	opts      TLSOptions
	log       *slog.Logger
	rec       security.Recorder
	now       func() time.Time
	clientCAs *x509.CertPool

	cur      atomic.Pointer[loadedCert]
	failures atomic.Uint64

	mu        sync.Mutex // serializes checks; held while loading
	lastCheck time.Time
	stamp     [2]fileStamp // cert, key as last looked at (loaded or not)
}

type loadedCert struct {
	cert        *tls.Certificate
	chainPEM    []byte
	fingerprint string
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// LoadTLS reads the key pair and the client CA; an error here stops the
// start (a gateway must not come up without the certificate it was given).
func LoadTLS(o TLSOptions, log *slog.Logger, rec security.Recorder) (*TLS, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if rec == nil {
		rec = security.Discard
	}
	if o.ReloadCheck <= 0 {
		o.ReloadCheck = time.Second
	}
	t := &TLS{opts: o, log: log, rec: rec, now: time.Now}
	if o.ClientCA != "" {
		pemBytes, err := os.ReadFile(o.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("http.tls.client_ca: %w", err)
		}
		t.clientCAs = x509.NewCertPool()
		if !t.clientCAs.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("http.tls.client_ca: %s holds no PEM certificate", o.ClientCA)
		}
	}
	t.stamp = [2]fileStamp{stampOf(o.CertFile), stampOf(o.KeyFile)}
	lc, err := loadPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, err
	}
	t.cur.Store(lc)
	t.lastCheck = t.now()
	if o.OnLoad != nil {
		o.OnLoad(lc.chainPEM)
	}
	return t, nil
}

// Config is the server-side tls.Config: TLS 1.2 at least, the current
// pair on every handshake, client certificates verified when given.
// HTTP/1.1 only: its limits (header size, one request at a time per
// connection) are the ones this package sets and tests.
func (t *TLS) Config() *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: t.getCertificate,
		NextProtos:     []string{"http/1.1"},
	}
	if t.clientCAs != nil {
		c.ClientCAs = t.clientCAs
		c.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return c
}

// Fingerprint is the SHA-256 fingerprint of the certificate in use, as
// browsers and `openssl x509 -fingerprint -sha256` show it.
func (t *TLS) Fingerprint() string { return t.cur.Load().fingerprint }

// Leaf is the certificate in use.
func (t *TLS) Leaf() *x509.Certificate { return t.cur.Load().cert.Leaf }

// ReloadFailures counts changed files that did not load.
func (t *TLS) ReloadFailures() uint64 { return t.failures.Load() }

func (t *TLS) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	t.maybeReload(false)
	return t.cur.Load().cert, nil
}

// Reload looks at the files now, without waiting for ReloadCheck, and
// loads them if they changed. It reports whether a new pair is in use.
func (t *TLS) Reload() (bool, error) { return t.maybeReload(true) }

func (t *TLS) maybeReload(force bool) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if !force && now.Sub(t.lastCheck) < t.opts.ReloadCheck {
		return false, nil
	}
	t.lastCheck = now
	st := [2]fileStamp{stampOf(t.opts.CertFile), stampOf(t.opts.KeyFile)}
	if st == t.stamp {
		return false, nil
	}
	// Remember what was looked at, loaded or not: a pair half written
	// (the certificate replaced, the key not yet) fails once, and loads
	// when the second file changes too.
	t.stamp = st
	lc, err := loadPair(t.opts.CertFile, t.opts.KeyFile)
	if err != nil {
		t.failures.Add(1)
		t.log.Warn("http tls: the changed certificate does not load; still serving the previous one", "err", err,
			"sha256_fingerprint", t.cur.Load().fingerprint)
		t.rec.Record(context.Background(), security.Event{Time: now, Kind: security.CertReloadFailed, Severity: security.SeverityError,
			Component: "api", Object: t.opts.CertFile, Outcome: "failed",
			Detail: "the changed certificate or key does not load; the previous certificate stays in use: " + err.Error()})
		return false, err
	}
	old := t.cur.Swap(lc)
	if bytes.Equal(old.cert.Certificate[0], lc.cert.Certificate[0]) {
		return false, nil
	}
	t.log.Info("http tls: certificate reloaded", "sha256_fingerprint", lc.fingerprint, "subject", lc.cert.Leaf.Subject.String(),
		"not_after", lc.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	if t.opts.OnLoad != nil {
		t.opts.OnLoad(lc.chainPEM)
	}
	return true, nil
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{size: -1}
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime()}
}

// loadPair loads and checks a key pair; its error names the files, never
// their content.
func loadPair(certFile, keyFile string) (*loadedCert, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls.key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, fmt.Errorf("http.tls: the key in %s does not match the certificate in %s", keyFile, certFile)
		}
		return nil, fmt.Errorf("http.tls: %s and %s do not hold a PEM certificate and its private key", certFile, keyFile)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("http.tls.cert_file %s: %w", certFile, err)
		}
	}
	var chain bytes.Buffer
	for _, der := range cert.Certificate {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return &loadedCert{cert: &cert, chainPEM: chain.Bytes(), fingerprint: Fingerprint(cert.Certificate[0])}, nil
}

// Fingerprint formats the SHA-256 of a DER certificate as colon-separated
// upper-case hex.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// handshakeLog is the http.Server's error log: it turns failed TLS
// handshakes into log lines at a level that does not let a port scanner
// flood the log, and certificate rejections into security events. The
// server reports a failed handshake only there, as a line of the form
// "http: TLS handshake error from ADDR: ERR".
type handshakeLog struct {
	g   *guardState
	log *slog.Logger
}

const handshakePrefix = "http: TLS handshake error from "

func (h handshakeLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	rest, ok := strings.CutPrefix(line, handshakePrefix)
	if !ok {
		h.log.Warn("http server", "err", line)
		return len(p), nil
	}
	remote, cause, _ := strings.Cut(rest, ": ")
	if detail, rejected := certRejection(cause); rejected {
		h.g.certRej.Add(1)
		if h.g.record(security.Event{Kind: security.CertRejected, Severity: security.SeverityWarning, Remote: remote,
			Outcome: "refused", Detail: detail}) {
			h.log.Warn("http tls: certificate rejected", "remote", remote, "err", cause)
		}
		return len(p), nil
	}
	h.log.Debug("http tls: handshake failed", "remote", remote, "err", cause)
	return len(p), nil
}

// certRejection says whether a handshake error is a certificate
// rejection, and by whom.
func certRejection(cause string) (string, bool) {
	switch {
	case strings.HasPrefix(cause, "remote error: tls: ") && strings.Contains(cause, "certificate"):
		return "the client rejected the API's certificate (" + clip(cause) + "); does it trust this gateway's certificate?", true
	case strings.Contains(cause, "failed to verify certificate"), strings.Contains(cause, "x509:"):
		return "client certificate rejected: " + clip(cause), true
	}
	return "", false
}
