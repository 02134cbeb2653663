package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"time"

	"github.com/weir-edge/weir/security"
)

// certRejectEvery is how often the same certificate rejection of one
// component is reported again while it persists: a source or sink retries
// with backoff, and a SOC needs the first occurrence and a reminder, not
// one event per retry.
const certRejectEvery = 10 * time.Minute

// certNote remembers the last certificate rejection a runner reported; only
// its own goroutine touches it.
type certNote struct {
	last string
	at   time.Time
}

// isCertRejection reports whether err says that a peer's certificate failed
// verification: an unknown CA, a wrong host name, an expired or otherwise
// invalid certificate. Libraries wrap these errors (then errors.As finds
// them) or flatten them into text (then the crypto/x509 and crypto/tls
// wording does).
func isCertRejection(err error) bool {
	if err == nil {
		return false
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "tls: failed to verify certificate") || strings.Contains(msg, "x509: certificate")
}

// noteConnectError reports a certificate rejection by a source or sink's
// peer as a security event (security.CertRejected): the first of a streak,
// a different one, or the same one again after certRejectEvery.
func (e *Engine) noteConnectError(ctx context.Context, component string, n *certNote, err error) {
	if e.opts.Events == nil || !isCertRejection(err) {
		return
	}
	now := e.opts.Now()
	msg := err.Error()
	if msg == n.last && now.Sub(n.at) < certRejectEvery {
		return
	}
	n.last, n.at = msg, now
	e.opts.Events.Record(ctx, security.Event{Time: now, Kind: security.CertRejected, Severity: security.SeverityWarning,
		Component: component, Outcome: "refused",
		Detail: "the peer's certificate failed verification; not connecting: " + msg})
}
