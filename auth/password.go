package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters of new hashes: RFC 9106's second recommended option
// scaled to OWASP's 19 MiB, so that a small ARM gateway verifies one
// password in tens of milliseconds and a handful at once fit in memory.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
	// Bounds of hashes read from a configuration, so a hash cannot make
	// each login allocate gigabytes.
	maxArgonMemory = 256 * 1024
	maxArgonTime   = 10
	maxPassword    = 1024
)

// MaxPassword is the longest password accepted, in bytes.
const MaxPassword = maxPassword

var errBadHash = errors.New("not an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash) or a bcrypt hash ($2a$/$2b$/$2y$); make one with weir user hash-password")

// HashPassword returns the argon2id PHC string of password, for the
// configuration file.
func HashPassword(password string) (string, error) {
	if password == "" || len(password) > maxPassword {
		return "", fmt.Errorf("a password must be 1..%d bytes", maxPassword)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// argonHash is a parsed PHC string.
type argonHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parseArgon(s string) (argonHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return argonHash{}, errBadHash
	}
	var h argonHash
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.memory, &h.time, &h.threads); err != nil ||
		h.memory < 8 || h.memory > maxArgonMemory || h.time < 1 || h.time > maxArgonTime || h.threads < 1 {
		return argonHash{}, fmt.Errorf("argon2id parameters out of range (m ≤ %d KiB, t ≤ %d, p ≥ 1)", maxArgonMemory, maxArgonTime)
	}
	var err error
	b64 := base64.RawStdEncoding
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return argonHash{}, errBadHash
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return argonHash{}, errBadHash
	}
	return h, nil
}

// checkHashFormat checks a configured hash without verifying anything; its
// errors never repeat the hash.
func checkHashFormat(s string) error {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		_, err := parseArgon(s)
		return err
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			return errBadHash
		}
		return nil
	}
	return errBadHash
}

// CheckPassword reports whether password matches the configured hash, in
// time that does not depend on where they differ.
func CheckPassword(hash, password string) bool {
	if len(password) > maxPassword {
		return false
	}
	if strings.HasPrefix(hash, "$argon2id$") {
		h, err := parseArgon(hash)
		if err != nil {
			return false
		}
		key := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
		return subtle.ConstantTimeCompare(key, h.key) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// dummyHash is verified for unknown users, so that answering "no such
// user" takes as long as a wrong password.
// It is made on first use, not at start.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("weir-dummy-password")
	return h
})
