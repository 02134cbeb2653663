package auth

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/security"
)

// Config is the top-level auth block. There are no default users and no
// default passwords: without users, API tokens (weir token create) and
// client certificates are the only ways in.
type Config struct {
	// Users are the local users. A user with a password_hash may use HTTP
	// Basic; client_certs map certificates to users.
	Users []User `yaml:"users"`
	// ClientCerts map verified client certificates to users (mTLS; the CA
	// is http.tls.client_ca).
	ClientCerts []ClientCert `yaml:"client_certs"`
	// JWT, when set, accepts bearer JWTs from an identity provider.
	JWT *JWTConfig `yaml:"jwt"`
	// Metrics is "authenticated" (the default: a viewer may scrape) or
	// "public" (a Prometheus without credentials may scrape /metrics).
	Metrics string `yaml:"metrics"`
	// TokenMaxLifetime bounds the expiry of tokens created through the API;
	// default 2160h (90 days).
	TokenMaxLifetime time.Duration `yaml:"token_max_lifetime"`
	// RateLimit bounds the requests of one caller (after authentication),
	// as "N/s", "N/min" or "N/h": bursts of N, refilled at N per period.
	// Default 600/min. One caller cannot starve another.
	RateLimit string `yaml:"rate_limit"`
}

// User is a local user.
type User struct {
	Name string        `yaml:"name"`
	Role security.Role `yaml:"role"`
	// PasswordHash is an argon2id PHC string ("$argon2id$v=19$m=…") made
	// by weir user hash-password, or a bcrypt hash ("$2b$…"). Optional: a
	// user without one logs in by certificate or token only.
	PasswordHash string `yaml:"password_hash"`
}

// ClientCert maps a verified client certificate to a user by exactly one
// of its subject CN, a DNS SAN or a URI SAN.
type ClientCert struct {
	CN   string `yaml:"cn"`
	DNS  string `yaml:"dns"`
	URI  string `yaml:"uri"`
	User string `yaml:"user"`
}

// JWTConfig accepts JWTs signed by an identity provider.
type JWTConfig struct {
	// Issuer is the expected "iss". With no jwks_file, the keys are found
	// by OIDC discovery at Issuer/.well-known/openid-configuration.
	Issuer string `yaml:"issuer"`
	// JWKSFile holds the provider's public keys (a JWKS document); it is
	// read at start.
	JWKSFile string `yaml:"jwks_file"`
	// Audience is the required "aud" (this gateway's client id).
	Audience string `yaml:"audience"`
	// UserClaim names the user; default preferred_username, then sub.
	UserClaim string `yaml:"user_claim"`
	// RoleClaim is the claim (a string or a list of strings) holding the
	// provider's group or role names; default "roles".
	RoleClaim string `yaml:"role_claim"`
	// Roles maps the provider's names to Weir roles; the highest match
	// wins, and a token with none is refused.
	Roles map[string]security.Role `yaml:"roles"`
}

// Metrics settings.
const (
	MetricsAuthenticated = "authenticated"
	MetricsPublic        = "public"
)

// Defaults.
const (
	DefaultTokenMaxLifetime = 90 * 24 * time.Hour
	DefaultRateLimit        = "600/min"
	// MaxTokenLifetime is the hard bound of any token, from the CLI too.
	MaxTokenLifetime = 2 * 365 * 24 * time.Hour
)

var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// ValidUser checks a user name: letters, digits, '_', '.', '@', '-'.
func ValidUser(name string) error {
	if !userName.MatchString(name) {
		return fmt.Errorf("user name %q is not valid (letters, digits, '_', '.', '@', '-'; at most 64)", name)
	}
	return nil
}

// Validate checks the block as written; it does no I/O. It never repeats
// a password hash.
func (c *Config) Validate() error {
	var errs conf.Errors
	seen := map[string]bool{}
	for i, u := range c.Users {
		at := conf.Index("users", i)
		if err := ValidUser(u.Name); err != nil {
			errs.Addf(at+".name", "%v", err)
		} else if seen[u.Name] {
			errs.Addf(at+".name", "user %q is listed twice", u.Name)
		}
		seen[u.Name] = true
		if _, err := security.ParseRole(string(u.Role)); err != nil {
			errs.Addf(at+".role", "%v", err)
		}
		if u.PasswordHash != "" {
			if err := checkHashFormat(u.PasswordHash); err != nil {
				errs.Addf(at+".password_hash", "%v", err)
			}
		}
	}
	for i, cc := range c.ClientCerts {
		at := conf.Index("client_certs", i)
		n := 0
		for _, s := range []string{cc.CN, cc.DNS, cc.URI} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			errs.Addf(at, "set exactly one of cn, dns and uri, found %d", n)
		}
		switch {
		case cc.User == "":
			errs.Addf(at+".user", "is required (a user of auth.users)")
		case !seen[cc.User]:
			errs.Addf(at+".user", "no user %q in auth.users", cc.User)
		}
	}
	if c.JWT != nil {
		errs.AddPrefixed("jwt", c.JWT.Validate())
	}
	switch c.Metrics {
	case "", MetricsAuthenticated, MetricsPublic:
	default:
		errs.Addf("metrics", "unknown value %q (want authenticated or public)", c.Metrics)
	}
	if c.TokenMaxLifetime < 0 || c.TokenMaxLifetime != 0 && c.TokenMaxLifetime < time.Minute || c.TokenMaxLifetime > MaxTokenLifetime {
		errs.Addf("token_max_lifetime", "must be between 1m and %s", MaxTokenLifetime)
	}
	if c.RateLimit != "" {
		if _, err := parseRate(c.RateLimit); err != nil {
			errs.Addf("rate_limit", "%v", err)
		}
	}
	return errs.Err()
}

// Validate checks the jwt block.
func (j *JWTConfig) Validate() error {
	var errs conf.Errors
	if j.Audience == "" {
		errs.Addf("audience", "is required (the client id tokens must be issued for)")
	}
	switch {
	case j.Issuer == "" && j.JWKSFile == "":
		errs.Addf("", "set issuer (OIDC discovery), jwks_file, or both")
	case j.JWKSFile != "" && !filepath.IsAbs(j.JWKSFile):
		errs.Addf("jwks_file", "must be an absolute path")
	}
	if j.Issuer != "" && !strings.HasPrefix(j.Issuer, "https://") && !strings.HasPrefix(j.Issuer, "http://127.0.0.1") &&
		!strings.HasPrefix(j.Issuer, "http://localhost") {
		errs.Addf("issuer", "must be an https:// URL")
	}
	if len(j.Roles) == 0 {
		errs.Addf("roles", "map at least one of the provider's role names to a Weir role (viewer, operator, engineer, admin)")
	}
	for name, r := range j.Roles {
		if _, err := security.ParseRole(string(r)); err != nil {
			errs.Addf("roles."+name, "%v", err)
		}
	}
	return errs.Err()
}

// rate is a parsed rate_limit.
type rate struct {
	n   float64
	per time.Duration
}

func parseRate(s string) (rate, error) {
	num, unit, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 1 || n > 1_000_000 {
		return rate{}, fmt.Errorf("%q is not a rate like 600/min (N/s, N/min or N/h, N ≥ 1)", s)
	}
	per := map[string]time.Duration{"s": time.Second, "min": time.Minute, "h": time.Hour}[unit]
	if per == 0 {
		return rate{}, fmt.Errorf("%q is not a rate like 600/min (the unit is s, min or h)", s)
	}
	return rate{float64(n), per}, nil
}

func (c *Config) metricsPublic() bool { return c.Metrics == MetricsPublic }

func (c *Config) tokenMaxLifetime() time.Duration {
	if c.TokenMaxLifetime == 0 {
		return DefaultTokenMaxLifetime
	}
	return c.TokenMaxLifetime
}
