package auth

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/security"
)

func TestSampleConfig(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(SampleConfig))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Users) != 2 || len(c.ClientCerts) != 2 || c.JWT == nil || len(c.JWT.Roles) != 2 || c.TokenMaxLifetime != 2160*time.Hour {
		t.Fatalf("sample not fully decoded: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	const secretHash = "$argon2id$v=19$m=19456,t=2,p=1$SECRETSALTSECRET$SECRETHASH"
	jwt := func(mod func(*JWTConfig)) *JWTConfig {
		j := &JWTConfig{Issuer: "https://idp.example.com", Audience: "weir", Roles: map[string]security.Role{"ops": security.Operator}}
		mod(j)
		return j
	}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"empty", Config{}, nil},
		{"user ok", Config{Users: []User{{Name: "alice", Role: security.Viewer}}}, nil},
		{"bad user", Config{Users: []User{{Name: "a b", Role: "root"}}}, []string{"users[0].name: user name", "users[0].role: unknown role \"root\""}},
		{"twice", Config{Users: []User{{Name: "a", Role: security.Viewer}, {Name: "a", Role: security.Viewer}}}, []string{"users[1].name: user \"a\" is listed twice"}},
		{"bad hash, not echoed", Config{Users: []User{{Name: "a", Role: security.Viewer, PasswordHash: secretHash}}}, []string{"users[0].password_hash: not an argon2id PHC string"}},
		{"plaintext password, not echoed", Config{Users: []User{{Name: "a", Role: security.Viewer, PasswordHash: "SECRETHASH"}}}, []string{"users[0].password_hash: not an argon2id"}},
		{"hash with huge memory", Config{Users: []User{{Name: "a", Role: security.Viewer, PasswordHash: "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}}}, []string{"parameters out of range"}},
		{"cert two keys", Config{Users: []User{{Name: "a", Role: security.Viewer}}, ClientCerts: []ClientCert{{CN: "x", URI: "y", User: "a"}}}, []string{"client_certs[0]: set exactly one of cn, dns and uri, found 2"}},
		{"cert unknown user", Config{ClientCerts: []ClientCert{{CN: "x", User: "nobody"}}}, []string{"client_certs[0].user: no user \"nobody\" in auth.users"}},
		{"jwt no audience", Config{JWT: jwt(func(j *JWTConfig) { j.Audience = "" })}, []string{"jwt.audience: is required"}},
		{"jwt nothing to verify with", Config{JWT: jwt(func(j *JWTConfig) { j.Issuer = "" })}, []string{"jwt: set issuer (OIDC discovery), jwks_file, or both"}},
		{"jwt plaintext issuer", Config{JWT: jwt(func(j *JWTConfig) { j.Issuer = "http://idp.example.com" })}, []string{"jwt.issuer: must be an https:// URL"}},
		{"jwt relative jwks", Config{JWT: jwt(func(j *JWTConfig) { j.JWKSFile = "keys.json" })}, []string{"jwt.jwks_file: must be an absolute path"}},
		{"jwt no roles", Config{JWT: jwt(func(j *JWTConfig) { j.Roles = nil })}, []string{"jwt.roles: map at least one"}},
		{"jwt bad role", Config{JWT: jwt(func(j *JWTConfig) { j.Roles = map[string]security.Role{"x": "boss"} })}, []string{"jwt.roles.x: unknown role"}},
		{"metrics", Config{Metrics: "open"}, []string{"metrics: unknown value \"open\""}},
		{"token lifetime", Config{TokenMaxLifetime: 30 * time.Second}, []string{"token_max_lifetime: must be between 1m"}},
		{"rate", Config{RateLimit: "lots"}, []string{"rate_limit: \"lots\" is not a rate"}},
		{"rate unit", Config{RateLimit: "5/day"}, []string{"the unit is s, min or h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("valid, want errors")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error echoes the configured hash: %v", err)
			}
		})
	}
}

func TestPasswords(t *testing.T) {
	h := testHash()
	if !CheckPassword(h, "correct horse") || CheckPassword(h, "correct horsE") || CheckPassword(h, "") {
		t.Fatal("argon2id check")
	}
	// bcrypt hashes (htpasswd -B) are accepted too.
	bc, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if checkHashFormat(string(bc)) != nil || !CheckPassword(string(bc), "correct horse") || CheckPassword(string(bc), "wrong") {
		t.Fatal("bcrypt hash refused or not checked")
	}
	h2, _ := HashPassword("correct horse")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if _, err := HashPassword(strings.Repeat("x", MaxPassword+1)); err == nil {
		t.Fatal("overlong password hashed")
	}
}
