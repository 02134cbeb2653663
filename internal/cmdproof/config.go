package cmdproof

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/security"
)

// Proof modes.
const (
	// ProofHMAC: every command is wrapped in an envelope carrying the
	// caller's name and an HMAC-SHA-256 with that caller's key.
	ProofHMAC = "hmac"
	// ProofBrokerTopic: the broker authenticates the publisher and lets
	// user U publish only on <topic>/by/U (Mosquitto: pattern write
	// <topic>/by/%u); the caller is that topic level, the payload the bare
	// command. The broker's ACL is then the whole proof.
	ProofBrokerTopic = "broker_topic"
)

// Defaults and limits.
const (
	// DefaultMaxAge is how far issued_at may be from the gateway's clock.
	DefaultMaxAge = 30 * time.Second
	// MaxMaxAge caps max_age: the replay set remembers every command for
	// that long.
	MaxMaxAge = time.Hour
	// MinKeyBytes is the least key length after decoding (the HMAC-SHA-256
	// block is 64 bytes; 32 is its security level).
	MinKeyBytes = 32
	// maxCallers bounds the callers of one block.
	maxCallers = 1000
)

// Config is the proof part of a command subscription (write_commands:,
// alarms.commands:), inlined in the block:
//
//	proof: hmac
//	max_age: 30s
//	callers:
//	  - {name: alice, key: {env: ALICE_CMD_KEY}, role: operator}
type Config struct {
	// Proof names how a command proves its sender: "hmac" (the default)
	// or "broker_topic".
	Proof string `yaml:"proof"`
	// MaxAge is how far a command's issued_at may lie from the gateway's
	// clock, in the past or the future (default 30s, at most 1h). A
	// command's id is remembered that long, so it cannot be replayed.
	MaxAge time.Duration `yaml:"max_age"`
	// Callers are who may send commands, each with its own key and role.
	Callers []Caller `yaml:"callers"`
}

// Caller is one sender of commands.
type Caller struct {
	// Name is the identity: commands are executed as "mqtt:<name>".
	Name string `yaml:"name"`
	// Key is the HMAC key, at least 32 bytes after decoding: hex (an even
	// number of hex digits) or base64 (standard or URL alphabet, padded or
	// not). Required with proof hmac; not used with broker_topic, where
	// the name is the broker user name.
	Key conf.Secret `yaml:"key"`
	// Role is what the caller may do: viewer, operator, engineer, admin.
	// Writes and alarm commands need operator.
	Role security.Role `yaml:"role"`
}

// Validate checks the block as written; it does no I/O (keys are read by
// NewVerifier).
func (c *Config) Validate() error {
	var errs conf.Errors
	if c.Proof != "" && c.Proof != ProofHMAC && c.Proof != ProofBrokerTopic {
		errs.Addf("proof", "%q is not a proof mode (want hmac or broker_topic)", c.Proof)
	}
	byBroker := c.Proof == ProofBrokerTopic
	if c.MaxAge < 0 || c.MaxAge > MaxMaxAge {
		errs.Addf("max_age", "must be between 1s and %s", MaxMaxAge)
	} else if c.MaxAge != 0 && c.MaxAge < time.Second {
		errs.Addf("max_age", "must be at least 1s (clocks drift)")
	}
	switch {
	case len(c.Callers) == 0:
		errs.Addf("callers", "at least one caller {name, key, role} is required: every command must prove its sender")
	case len(c.Callers) > maxCallers:
		errs.Addf("callers", "at most %d callers", maxCallers)
	}
	seen := map[string]bool{}
	for i, cl := range c.Callers {
		at := conf.Index("callers", i)
		if err := ValidName(cl.Name); err != nil {
			errs.Add(conf.Errorf(at+".name", "%w", err))
		} else if seen[cl.Name] {
			errs.Addf(at+".name", "%q is listed twice", cl.Name)
		}
		seen[cl.Name] = true
		switch {
		case byBroker && cl.Key.IsSet():
			errs.Addf(at+".key", "is not used with proof: broker_topic (the broker authenticates the caller); remove it or use proof: hmac")
		case byBroker:
		case !cl.Key.IsSet():
			errs.Addf(at+".key", "is required: {env: NAME} or {file: /abs/path} holding at least %d bytes, hex or base64", MinKeyBytes)
		default:
			if err := cl.Key.Validate(); err != nil {
				errs.Add(conf.Errorf(at+".key", "%w", err))
			}
		}
		if cl.Role == "" {
			errs.Addf(at+".role", "is required (viewer, operator, engineer or admin)")
		} else if _, err := security.ParseRole(string(cl.Role)); err != nil {
			errs.Add(conf.Errorf(at+".role", "%w", err))
		}
	}
	return errs.Err()
}

func (c *Config) maxAge() time.Duration {
	if c.MaxAge == 0 {
		return DefaultMaxAge
	}
	return c.MaxAge
}

// maxName bounds a caller name.
const maxName = 64

// ValidName accepts 1..64 bytes of [A-Za-z0-9_.@-]: the name becomes part
// of the caller "mqtt:<name>" that policies match and the trail records.
func ValidName(s string) error {
	if s == "" || len(s) > maxName {
		return fmt.Errorf("a caller name is 1..%d bytes", maxName)
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9',
			ch == '_', ch == '.', ch == '@', ch == '-':
		default:
			return errors.New("a caller name may only hold A-Z a-z 0-9 _ . @ -")
		}
	}
	return nil
}

// DecodeKey decodes a key as written in its secret: hex when it is an even
// number of hex digits, else base64 (standard or URL alphabet, padded or
// not). It must give at least MinKeyBytes. Errors never repeat the input.
func DecodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("the key is empty")
	}
	var k []byte
	if isHex(s) {
		k, _ = hex.DecodeString(s)
	} else {
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if k, err = enc.DecodeString(s); err == nil {
				break
			}
		}
		if err != nil {
			return nil, errors.New("the key is neither hex nor base64")
		}
	}
	if len(k) < MinKeyBytes {
		return nil, fmt.Errorf("the key decodes to %d bytes; at least %d are required (e.g. openssl rand -hex 32)", len(k), MinKeyBytes)
	}
	return k, nil
}

func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= '0' && ch <= '9', ch >= 'a' && ch <= 'f', ch >= 'A' && ch <= 'F':
		default:
			return false
		}
	}
	return true
}
