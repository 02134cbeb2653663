package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/weir-edge/weir/security"
)

const testIssuer = "https://idp.example.com/realms/plant"

func writeJWKS(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func signJWT(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJWT(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := writeJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	r := newRig(t, Config{JWT: &JWTConfig{Issuer: testIssuer, JWKSFile: jwks, Audience: "weir-gw1", RoleClaim: "groups",
		Roles: map[string]security.Role{"plant-operators": security.Operator, "plant-viewers": security.Viewer}}})
	now := r.clock.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": testIssuer, "aud": "weir-gw1", "sub": "u-123", "preferred_username": "alice",
			"exp": now.Add(time.Hour).Unix(), "iat": now.Add(-time.Minute).Unix(), "groups": []string{"staff", "plant-operators"}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	valid := signJWT(t, key, "k1", claims(nil))
	header, _, _ := strings.Cut(valid, ".")
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(mustJSON(claims(nil))) + "."
	n := 0
	for name, tc := range map[string]struct {
		token string
		need  security.Role
		want  Outcome
		user  string
	}{
		"valid":           {valid, security.Operator, OK, "alice"},
		"role too low":    {signJWT(t, key, "k1", claims(func(c map[string]any) { c["groups"] = "plant-viewers" })), security.Operator, Forbidden, "alice"},
		"expired":         {signJWT(t, key, "k1", claims(func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() })), security.Viewer, Unauthenticated, ""},
		"wrong audience":  {signJWT(t, key, "k1", claims(func(c map[string]any) { c["aud"] = "other-app" })), security.Viewer, Unauthenticated, ""},
		"wrong issuer":    {signJWT(t, key, "k1", claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), security.Viewer, Unauthenticated, ""},
		"wrong key":       {signJWT(t, other, "k1", claims(nil)), security.Viewer, Unauthenticated, ""},
		"no mapped role":  {signJWT(t, key, "k1", claims(func(c map[string]any) { c["groups"] = []string{"staff"} })), security.Viewer, Unauthenticated, ""},
		"alg none":        {unsigned, security.Viewer, Unauthenticated, ""},
		"tampered claims": {header + "." + base64.RawURLEncoding.EncodeToString(mustJSON(claims(func(c map[string]any) { c["groups"] = "plant-operators" }))) + "." + strings.Split(valid, ".")[2], security.Viewer, Unauthenticated, ""},
		"user from sub":   {signJWT(t, key, "k1", claims(func(c map[string]any) { delete(c, "preferred_username") })), security.Viewer, OK, "u-123"},
	} {
		t.Run(name, func(t *testing.T) {
			// Each case from its own address, so the back-off stays out of it.
			n++
			d := r.a.Check(request("10.9.0."+strconv.Itoa(n)+":1", "Bearer "+tc.token), tc.need)
			if d.Outcome != tc.want || d.Identity.User != tc.user {
				t.Fatalf("got %v %q, want %v %q", d.Outcome, d.Identity.User, tc.want, tc.user)
			}
		})
	}
	// During a back-off a valid JWT still gets in; a forged one is 429.
	forged := signJWT(t, other, "k1", claims(nil))
	for range failLimit {
		r.a.Check(request("10.9.1.1:1", "Bearer "+forged), security.Viewer)
	}
	if got := r.a.Check(request("10.9.1.1:2", "Bearer "+forged), security.Viewer).Outcome; got != Throttled {
		t.Errorf("forged JWT during back-off: %v, want Throttled", got)
	}
	if got := r.a.Check(request("10.9.1.1:3", "Bearer "+valid), security.Operator).Outcome; got != OK {
		t.Errorf("valid JWT during back-off: %v, want OK", got)
	}
	if strings.Contains(r.logs.String(), valid) {
		t.Error("a JWT is in the log")
	}
}

func TestJWKSFileRefusesPrivateKeys(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := writeJWKS(t, jose.JSONWebKey{Key: key, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	_, err := New(Config{JWT: &JWTConfig{JWKSFile: jwks, Audience: "a", Roles: map[string]security.Role{"x": security.Viewer}}},
		Options{DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("err = %v", err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestJWKSCheck(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv := writeJWKS(t, jose.JSONWebKey{Key: key, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	pub := writeJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"public":  {pub, ""},
		"private": {priv, "jwks_file: JWKS file " + priv + " holds a private key"},
		"missing": {"/nonexistent/jwks.json", "does not exist"},
	} {
		t.Run(name, func(t *testing.T) {
			err := JWTConfig{JWKSFile: tc.path}.Check()
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want %q", err, tc.want)
			}
		})
	}
}

// With only an issuer, the keys come from OIDC discovery, at the first JWT.
func TestJWTDiscovery(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + "/keys",
			"authorization_endpoint": srv.URL + "/auth", "id_token_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	cfg := Config{JWT: &JWTConfig{Issuer: srv.URL, Audience: "weir", Roles: map[string]security.Role{"ops": security.Operator}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, cfg)
	now := r.clock.Now()
	tok := signJWT(t, key, "k1", map[string]any{"iss": srv.URL, "aud": "weir", "sub": "bob", "roles": "ops",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()})
	d := r.a.Check(request("10.8.0.1:1", "Bearer "+tok), security.Operator)
	if d.Outcome != OK || d.Identity.User != "bob" || d.Identity.Method != "jwt" {
		t.Fatalf("%+v", d)
	}
}

// A provider's key rotation: the JWKS file is rewritten and the new key
// works without a restart.
func TestJWKSReload(t *testing.T) {
	old, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	next, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := writeJWKS(t, jose.JSONWebKey{Key: &old.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	r := newRig(t, Config{JWT: &JWTConfig{JWKSFile: path, Audience: "weir", Roles: map[string]security.Role{"ops": security.Viewer}}})
	now := r.clock.Now()
	claims := map[string]any{"aud": "weir", "sub": "bob", "roles": "ops", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	if d := r.a.Check(request("10.7.0.1:1", "Bearer "+signJWT(t, next, "k2", claims)), security.Viewer); d.Outcome != Unauthenticated {
		t.Fatalf("unknown key accepted: %+v", d)
	}
	// Replaced as deploy tools do (write, rename): a new file.
	if err := os.Rename(writeJWKS(t, jose.JSONWebKey{Key: &next.PublicKey, KeyID: "k2", Algorithm: "ES256", Use: "sig"}), path); err != nil {
		t.Fatal(err)
	}
	if d := r.a.Check(request("10.7.0.2:1", "Bearer "+signJWT(t, next, "k2", claims)), security.Viewer); d.Outcome != OK {
		t.Fatalf("rotated key refused: %+v", d)
	}
	if d := r.a.Check(request("10.7.0.3:1", "Bearer "+signJWT(t, old, "k1", claims)), security.Viewer); d.Outcome != Unauthenticated {
		t.Fatalf("retired key accepted: %+v", d)
	}
}
