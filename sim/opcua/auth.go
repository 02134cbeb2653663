package simopcua

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/weir-edge/weir/internal/third_party/gopcua/server"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/uapolicy"
	"github.com/weir-edge/weir/internal/third_party/gopcua/uasc"
)

// ApplicationURI is the simulator's application URI, in its certificate.
const ApplicationURI = "urn:weir:sim:opcua"

// sessionNonceLength is the server nonce length of gopcua's server (32
// bytes); the client appends the nonce to the password it encrypts.
const sessionNonceLength = 32

// newServerCert makes a self-signed RSA-2048 server certificate for
// localhost and 127.0.0.1 with the application URI in subjectAltName.
func newServerCert(host string) ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	u, _ := url.Parse(ApplicationURI)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Weir simulator", Organization: []string{"Weir"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if ip := net.ParseIP(host); ip != nil && !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if ip == nil && host != "localhost" && host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return der, key, err
}

// librarySessionService returns gopcua's own SessionService bound to srv.
// gopcua v0.8.0's server accepts any user identity token; the simulator
// checks tokens in its own ActivateSession handler and then hands the
// request to the library's. The service's only field, the server, is
// unexported, so it is set through reflection; a changed layout makes this
// return nil and Serve fail, rather than misbehave.
func librarySessionService(srv *server.Server) *server.SessionService {
	svc := &server.SessionService{}
	f := reflect.ValueOf(svc).Elem().FieldByName("srv")
	if !f.IsValid() || f.Type() != reflect.TypeOf(srv) {
		return nil
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(srv))
	return svc
}

var errIdentity = errors.New("identity token rejected")

// checkIdentity validates the user identity token of an ActivateSession
// request against the configured users: anonymous only when allowed, a
// user name only with its password. Passwords arrive encrypted with the
// server's key per the token policy (length ‖ password ‖ server nonce).
func (s *Server) checkIdentity(req *ua.ActivateSessionRequest) ua.StatusCode {
	var tok any
	if req.UserIdentityToken != nil {
		tok = req.UserIdentityToken.Value
	}
	switch t := tok.(type) {
	case nil, *ua.AnonymousIdentityToken:
		if s.opts.DenyAnonymous {
			return ua.StatusBadIdentityTokenRejected
		}
		return ua.StatusOK
	case *ua.UserNameIdentityToken:
		want, ok := s.opts.Users[t.UserName]
		if !ok {
			return ua.StatusBadUserAccessDenied
		}
		got, err := s.decryptPassword(t)
		if err != nil {
			return ua.StatusBadIdentityTokenInvalid
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return ua.StatusBadUserAccessDenied
		}
		return ua.StatusOK
	}
	return ua.StatusBadIdentityTokenRejected
}

// decryptPassword undoes the client's password encryption. The policy is
// named by the token's policy id, which the library builds as
// "username_<policy>" from the enabled security policies.
func (s *Server) decryptPassword(t *ua.UserNameIdentityToken) (string, error) {
	suffix, _ := strings.CutPrefix(strings.ToLower(t.PolicyID), "username_")
	uri := ""
	for _, p := range uapolicy.SupportedPolicies() {
		if strings.ToLower(strings.TrimPrefix(p, "http://opcfoundation.org/UA/SecurityPolicy#")) == suffix {
			uri = p
		}
	}
	if uri == "" || uri == ua.SecurityPolicyURINone || t.EncryptionAlgorithm == "" {
		return string(t.Password), nil // sent in clear
	}
	enc, err := uapolicy.Asymmetric(uri, s.key, &s.key.PublicKey)
	if err != nil {
		return "", err
	}
	plain, err := enc.Decrypt(t.Password)
	if err != nil {
		return "", err
	}
	if len(plain) < 4 {
		return "", errIdentity
	}
	n := int(binary.LittleEndian.Uint32(plain))
	if n < sessionNonceLength || 4+n > len(plain) {
		return "", errIdentity
	}
	return string(plain[4 : 4+n-sessionNonceLength]), nil
}

// activateSession is the ActivateSession handler: identity check, then the
// library's handler.
func (s *Server) activateSession(lib *server.SessionService) server.Handler {
	return func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		req, ok := r.(*ua.ActivateSessionRequest)
		if !ok {
			return nil, ua.StatusBadRequestTypeInvalid
		}
		if st := s.checkIdentity(req); st != ua.StatusOK {
			s.authFailures.Add(1)
			s.log.Warn("session activation refused", "status", st.Error(), "remote", sc.RemoteAddr())
			return nil, st
		}
		return lib.ActivateSession(sc, r, reqID)
	}
}

// libLogger adapts slog to the gopcua server's printf-style logger, at
// debug level: the library reports routine events (a client going away,
// its own node set's duplicate references) as warnings and errors.
type libLogger struct{ log *slog.Logger }

func (l libLogger) Debug(msg string, args ...any) {}
func (l libLogger) Info(msg string, args ...any)  { l.log.Debug(fmt.Sprintf(msg, args...)) }
func (l libLogger) Warn(msg string, args ...any)  { l.log.Debug(fmt.Sprintf(msg, args...)) }
func (l libLogger) Error(msg string, args ...any) { l.log.Debug(fmt.Sprintf(msg, args...)) }
