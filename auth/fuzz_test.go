package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParseAuthorization feeds the Authorization header parser outside
// input: it must not panic, must accept only what it can give back, and
// its error must never repeat the input.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"Bearer weir_0123456789abcdef_" + strings.Repeat("a", 64),
		"Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:correct horse")),
		"basic " + base64.StdEncoding.EncodeToString([]byte(":")),
		"Basic ====", "Bearer", "Bearer  x", "Digest realm=x", "", "Bearer a b", "Bearer ab==c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseAuthorization(h)
		if err != nil {
			if h != "" && len(h) > 3 && strings.Contains(err.Error(), h) {
				t.Fatalf("error repeats the input: %v", err)
			}
			return
		}
		switch c.Scheme {
		case SchemeBearer:
			if c.Token == "" || !isToken68(c.Token) || strings.ContainsAny(c.Token, " \t\r\n") {
				t.Fatalf("bearer %q accepted", c.Token)
			}
		case SchemeBasic:
			if ValidUser(c.User) != nil || len(c.Password) > MaxPassword {
				t.Fatalf("basic user %q accepted", c.User)
			}
		default:
			t.Fatalf("scheme %q", c.Scheme)
		}
	})
}

// FuzzParseToken: only the exact token shape passes, and the id is its
// 16 hex digits.
func FuzzParseToken(f *testing.F) {
	f.Add("weir_0123456789abcdef_" + strings.Repeat("a", 64))
	f.Add("weir_0123456789ABCDEF_" + strings.Repeat("a", 64))
	f.Add("weir__")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := ParseToken(tok)
		if err != nil {
			return
		}
		if len(tok) != tokenLen || !strings.HasPrefix(tok, TokenPrefix) || !ValidTokenID(id) || !strings.Contains(tok, "_"+id+"_") {
			t.Fatalf("%q accepted with id %q", tok, id)
		}
	})
}

// FuzzCheckHashFormat: a configured hash is outside input too (a file
// anyone may have edited); a hash that passes must not make a login
// allocate beyond the bounds.
func FuzzCheckHashFormat(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43))
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43))
	f.Add("$2b$10$" + strings.Repeat("a", 53))
	f.Fuzz(func(t *testing.T, s string) {
		if checkHashFormat(s) != nil || !strings.HasPrefix(s, "$argon2id$") {
			return
		}
		h, err := parseArgon(s)
		if err != nil || h.memory > maxArgonMemory || h.time > maxArgonTime {
			t.Fatalf("%q: %+v %v", s, h, err)
		}
	})
}
