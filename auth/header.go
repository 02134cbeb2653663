package auth

import (
	"encoding/base64"
	"errors"
	"strings"
)

// Authorization schemes Weir accepts.
const (
	SchemeBearer = "Bearer"
	SchemeBasic  = "Basic"
)

// maxAuthorization bounds the header value: a JWT with many claims fits
// in 8 KiB; more is refused before decoding.
const maxAuthorization = 8 << 10

// Credential is a parsed Authorization header.
type Credential struct {
	Scheme string // SchemeBearer or SchemeBasic
	// Token is the bearer credential.
	Token string
	// User and Password are the Basic credentials.
	User, Password string
}

// ErrBadAuthorization is any malformed Authorization header.
var ErrBadAuthorization = errors.New("malformed Authorization header")

// ParseAuthorization parses "Bearer <token>" or "Basic <base64(user:pass)>"
// (the scheme case-insensitive, RFC 9110 §11.1). It reads outside input and
// never panics; its error never repeats the input.
func ParseAuthorization(h string) (Credential, error) {
	if len(h) > maxAuthorization {
		return Credential{}, ErrBadAuthorization
	}
	scheme, rest, ok := strings.Cut(h, " ")
	rest = strings.TrimLeft(rest, " ")
	if !ok || rest == "" || strings.ContainsAny(rest, " \t\r\n") {
		return Credential{}, ErrBadAuthorization
	}
	switch {
	case strings.EqualFold(scheme, SchemeBearer):
		if !isToken68(rest) {
			return Credential{}, ErrBadAuthorization
		}
		return Credential{Scheme: SchemeBearer, Token: rest}, nil
	case strings.EqualFold(scheme, SchemeBasic):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return Credential{}, ErrBadAuthorization
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok || user == "" || len(pass) > MaxPassword || ValidUser(user) != nil {
			return Credential{}, ErrBadAuthorization
		}
		return Credential{Scheme: SchemeBasic, User: user, Password: pass}, nil
	}
	return Credential{}, ErrBadAuthorization
}

// isToken68 checks RFC 9110's token68: the characters of base64 and
// base64url, then '=' padding.
func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
