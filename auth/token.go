package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weir-edge/weir/security"
)

// A token reads "weir_<id>_<secret>": TokenPrefix so that secret scanners
// and people recognise it, a 16-hex-digit id that names it in lists, logs
// and revocation (the id alone grants nothing), and 64 hex digits (32
// bytes) from crypto/rand. Only SHA-256 of the whole token is stored: a
// token has 256 bits of entropy, so a slow KDF would add nothing.
const (
	TokenPrefix  = "weir_"
	tokenIDLen   = 16
	tokenSecLen  = 64
	tokenLen     = len(TokenPrefix) + tokenIDLen + 1 + tokenSecLen
	tokenIDBytes = tokenIDLen / 2
)

// ErrBadToken is any malformed token; it says no more on purpose.
var ErrBadToken = errors.New("malformed token")

// TokenInfo is what the store keeps about a token; never the token.
type TokenInfo struct {
	ID      string        `json:"id"`
	User    string        `json:"user"`
	Role    security.Role `json:"role"`
	Created time.Time     `json:"created"`
	Expires time.Time     `json:"expires"`
	Revoked *time.Time    `json:"revoked,omitempty"`
	// Note says what the token is for ("scada historian").
	Note string `json:"note,omitempty"`
	// Hash is hex SHA-256 of the token. It is not shown by the API or the
	// CLI (json "-" in the views they print).
	Hash string `json:"hash"`
}

// State says whether a token is usable at now.
func (t TokenInfo) State(now time.Time) string {
	switch {
	case t.Revoked != nil:
		return "revoked"
	case !now.Before(t.Expires):
		return "expired"
	}
	return "active"
}

// newToken makes a token and its record; the token is returned once.
func newToken(user string, role security.Role, created time.Time, lifetime time.Duration, note string) (string, TokenInfo, error) {
	var b [tokenIDBytes + tokenSecLen/2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", TokenInfo{}, fmt.Errorf("token: %w", err)
	}
	id := hex.EncodeToString(b[:tokenIDBytes])
	tok := TokenPrefix + id + "_" + hex.EncodeToString(b[tokenIDBytes:])
	return tok, TokenInfo{ID: id, User: user, Role: role, Created: created.UTC(), Expires: created.Add(lifetime).UTC(),
		Note: note, Hash: hashToken(tok)}, nil
}

// ParseToken checks a token's shape and returns its id. It reads outside
// input and never panics.
func ParseToken(tok string) (id string, err error) {
	if len(tok) != tokenLen || !strings.HasPrefix(tok, TokenPrefix) || tok[len(TokenPrefix)+tokenIDLen] != '_' {
		return "", ErrBadToken
	}
	id = tok[len(TokenPrefix) : len(TokenPrefix)+tokenIDLen]
	if !isLowerHex(id) || !isLowerHex(tok[len(TokenPrefix)+tokenIDLen+1:]) {
		return "", ErrBadToken
	}
	return id, nil
}

// ValidTokenID checks an id given to revoke.
func ValidTokenID(id string) bool { return len(id) == tokenIDLen && isLowerHex(id) }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// matches compares tok's hash with the stored one in constant time.
func (t TokenInfo) matches(tok string) bool {
	want, err := hex.DecodeString(t.Hash)
	if err != nil {
		return false
	}
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// TokenView is a token as the API and the CLI show it: no hash.
type TokenView struct {
	ID      string        `json:"id"`
	User    string        `json:"user"`
	Role    security.Role `json:"role"`
	Created time.Time     `json:"created"`
	Expires time.Time     `json:"expires"`
	Revoked *time.Time    `json:"revoked,omitempty"`
	Note    string        `json:"note,omitempty"`
	State   string        `json:"state"`
}

// View is t without its hash, with its state at now.
func (t TokenInfo) View(now time.Time) TokenView {
	return TokenView{ID: t.ID, User: t.User, Role: t.Role, Created: t.Created, Expires: t.Expires, Revoked: t.Revoked,
		Note: t.Note, State: t.State(now)}
}
