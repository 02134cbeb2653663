package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/security"
)

// signingAlgs are the JWT algorithms accepted: asymmetric only, so a
// gateway never holds a key that could mint tokens.
var signingAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// discoveryRetry spaces OIDC discovery attempts while the issuer is down,
// so a gateway starts (and serves tokens and certificates) without it.
const discoveryRetry = 30 * time.Second

// jwtVerifier verifies bearer JWTs and maps their claims to an identity.
type jwtVerifier struct {
	cfg JWTConfig
	now func() time.Time

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	lastTry  time.Time
	// jwks is the JWKS file's stamp when it was read: a changed file
	// (the provider rotated its keys) is read again.
	jwks fileStamp
}

func newJWTVerifier(cfg JWTConfig, now func() time.Time) (*jwtVerifier, error) {
	v := &jwtVerifier{cfg: cfg, now: now}
	if cfg.JWKSFile == "" {
		return v, nil // discovery on first use
	}
	if err := v.loadJWKS(); err != nil {
		return nil, conf.Permanent(err)
	}
	return v, nil
}

// loadJWKS (re)reads the JWKS file when it changed; on failure the keys
// read before stay in use.
func (v *jwtVerifier) loadJWKS() error {
	fi, err := os.Stat(v.cfg.JWKSFile)
	if err == nil && v.verifier != nil && stampOf(fi) == v.jwks {
		return nil
	}
	ks, err := readJWKS(v.cfg.JWKSFile)
	if err != nil {
		return err
	}
	v.verifier = oidc.NewVerifier(v.cfg.Issuer, ks, v.oidcConfig())
	if fi != nil {
		v.jwks = stampOf(fi)
	}
	return nil
}

// readJWKS reads the provider's public keys; a private key is refused.
func readJWKS(path string) (*oidc.StaticKeySet, error) {
	data, _, err := conf.ReadFile("JWKS file", path)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS file %s: %w", path, err)
	}
	ks := &oidc.StaticKeySet{}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("JWKS file %s holds a private key (%s); give the provider's public keys only", path, k.KeyID)
		}
		ks.PublicKeys = append(ks.PublicKeys, k.Key)
	}
	if len(ks.PublicKeys) == 0 {
		return nil, fmt.Errorf("JWKS file %s holds no keys", path)
	}
	return ks, nil
}

// Check reads what the block names on this machine, for weir validate:
// the JWKS file must hold public keys only. It does nothing without one.
func (j JWTConfig) Check() error {
	if j.JWKSFile == "" || !filepath.IsAbs(j.JWKSFile) {
		return nil
	}
	if _, err := readJWKS(j.JWKSFile); err != nil {
		return conf.Errorf("jwks_file", "%v", err)
	}
	return nil
}

func (v *jwtVerifier) oidcConfig() *oidc.Config {
	return &oidc.Config{ClientID: v.cfg.Audience, SupportedSigningAlgs: signingAlgs,
		SkipIssuerCheck: v.cfg.Issuer == "", Now: v.now}
}

// get returns the verifier, discovering the issuer's keys when needed.
func (v *jwtVerifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cfg.JWKSFile != "" {
		if err := v.loadJWKS(); err != nil && v.verifier == nil {
			return nil, err
		}
		return v.verifier, nil
	}
	if v.verifier != nil {
		return v.verifier, nil
	}
	if now := time.Now(); !v.lastTry.IsZero() && now.Sub(v.lastTry) < discoveryRetry {
		return nil, errors.New("OIDC issuer not reachable yet")
	} else {
		v.lastTry = now
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// The provider keeps this client for its key fetches, which otherwise
	// have no deadline.
	dctx = oidc.ClientContext(dctx, &http.Client{Timeout: 10 * time.Second})
	p, err := oidc.NewProvider(dctx, v.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery at %s: %w", v.cfg.Issuer, err)
	}
	v.verifier = p.Verifier(v.oidcConfig())
	return v.verifier, nil
}

// verify checks raw and returns the user and the highest mapped role.
// Its errors are for the log, never for the caller.
func (v *jwtVerifier) verify(ctx context.Context, raw string) (string, security.Role, error) {
	ver, err := v.get(ctx)
	if err != nil {
		return "", "", err
	}
	tok, err := ver.Verify(ctx, raw)
	if err != nil {
		return "", "", err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return "", "", err
	}
	userClaim := v.cfg.UserClaim
	if userClaim == "" {
		userClaim = "preferred_username"
	}
	user, _ := claims[userClaim].(string)
	if user == "" && v.cfg.UserClaim == "" {
		user = tok.Subject
	}
	if ValidUser(user) != nil {
		return "", "", fmt.Errorf("claim %s is missing or not a valid user name", userClaim)
	}
	roleClaim := v.cfg.RoleClaim
	if roleClaim == "" {
		roleClaim = "roles"
	}
	var names []string
	switch c := claims[roleClaim].(type) {
	case string:
		names = []string{c}
	case []any:
		for _, x := range c {
			if s, ok := x.(string); ok {
				names = append(names, s)
			}
		}
	}
	var best security.Role
	for _, n := range names {
		if r, ok := v.cfg.Roles[n]; ok && (best == "" || r.Includes(best)) {
			best = r
		}
	}
	if best == "" {
		return "", "", fmt.Errorf("claim %s maps to no Weir role", roleClaim)
	}
	return user, best, nil
}
