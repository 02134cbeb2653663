package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/weir-edge/weir/security"
)

// testCA issues certificates for the mTLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) issue(t *testing.T, cn string, dns []string, uris []string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: dns,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, u := range uris {
		pu, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A real TLS handshake on 127.0.0.1: the server verifies client
// certificates against a test CA when given (as the API's TLS layer does),
// and the authenticator maps the verified ones to users.
func TestClientCertMapping(t *testing.T) {
	ca := newTestCA(t, "plant CA")
	rogue := newTestCA(t, "rogue CA")
	cfg := Config{
		Users: []User{{Name: "scada", Role: security.Operator}, {Name: "hmi", Role: security.Viewer}},
		ClientCerts: []ClientCert{
			{CN: "scada-01", User: "scada"},
			{URI: "spiffe://plant1/hmi", User: "hmi"},
			{DNS: "hmi2.plant1.local", User: "hmi"},
		},
	}
	r := newRig(t, cfg)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		d := r.a.Check(req, security.Operator)
		w.WriteHeader([]int{OK: 200, Unauthenticated: 401, Forbidden: 403, Throttled: 429}[d.Outcome])
		io.WriteString(w, d.Identity.User)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	client := func(cert *tls.Certificate) *http.Client {
		c := srv.Client()
		tr := c.Transport.(*http.Transport).Clone()
		if cert != nil {
			// Present it even when its issuer is not one the server
			// asked for (Go's client would otherwise send none).
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	}
	cert := func(cn string, dns, uris []string) *tls.Certificate {
		c := ca.issue(t, cn, dns, uris, x509.ExtKeyUsageClientAuth)
		return &c
	}
	rogueCert := rogue.issue(t, "scada-01", nil, nil, x509.ExtKeyUsageClientAuth)
	for name, tc := range map[string]struct {
		cert      *tls.Certificate
		code      int
		user      string
		handshake bool // the handshake itself must fail
	}{
		"CN maps to an operator": {cert("scada-01", nil, nil), 200, "scada", false},
		"URI SAN maps to viewer": {cert("anything", nil, []string{"spiffe://plant1/hmi"}), 403, "hmi", false},
		"DNS SAN maps to viewer": {cert("x", []string{"hmi2.plant1.local"}, nil), 403, "hmi", false},
		"unmapped certificate":   {cert("laptop", nil, nil), 401, "", false},
		"no certificate":         {nil, 401, "", false},
		"another CA's cert":      {&rogueCert, 0, "", true},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := client(tc.cert).Get(srv.URL + "/x")
			if tc.handshake {
				if err == nil {
					resp.Body.Close()
					t.Fatal("a certificate from another CA was accepted by the handshake")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || string(body) != tc.user {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tc.code, tc.user)
			}
		})
	}
	// Unmapped certificates are failed logins: after enough of them
	// 127.0.0.1 backs off, but a verified, mapped certificate still gets in.
	get := func(c *tls.Certificate) int {
		resp, err := client(c).Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range failLimit {
		get(cert("laptop", nil, nil))
	}
	if got := get(cert("laptop", nil, nil)); got != 429 {
		t.Fatalf("unmapped certificate during back-off: %d, want 429", got)
	}
	if got := get(cert("scada-01", nil, nil)); got != 200 {
		t.Fatalf("mapped certificate during back-off: %d, want 200", got)
	}
}
