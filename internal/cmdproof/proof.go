package cmdproof

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/weir-edge/weir/security"
)

// Kinds of command: part of what the MAC covers, so a command signed for
// one subscription is never accepted by another.
const (
	KindWrite = "write"
	KindAlarm = "alarm"
)

// Limits of an envelope.
const (
	// MaxMessage bounds a signed message (envelope and command).
	MaxMessage = 16 << 10
	// MaxID bounds a command id (the nonce).
	MaxID = 128
	// MaxRemembered bounds the replay set. When it is full of ids not yet
	// expired, new commands are refused rather than an id forgotten early.
	MaxRemembered = 10_000
)

// Envelope is the signed message as published:
//
//	{"caller":"alice","cmd":{...},"mac":"<64 hex digits>"}
//
// mac is HMAC-SHA-256, with the caller's key, over
//
//	"weir-cmd-v1\n" + kind + "\n" + caller + "\n" + <the bytes of cmd>
//
// where the bytes of cmd are exactly those between the first byte of its
// JSON object ('{') and its last ('}') as they appear in the message; the
// gateway never re-encodes them.
type Envelope struct {
	Caller string          `json:"caller"`
	Cmd    json.RawMessage `json:"cmd"`
	MAC    string          `json:"mac"`
}

// MAC computes the mac of cmd for caller and kind.
func MAC(key []byte, kind, caller string, cmd []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("weir-cmd-v1\n" + kind + "\n" + caller + "\n"))
	m.Write(cmd)
	return m.Sum(nil)
}

// Sign wraps cmd (a JSON object, used byte for byte) in a signed
// envelope.
func Sign(key []byte, kind, caller string, cmd []byte) ([]byte, error) {
	if err := ValidName(caller); err != nil {
		return nil, err
	}
	cmd = bytes.TrimSpace(cmd)
	if !json.Valid(cmd) || len(cmd) == 0 || cmd[0] != '{' {
		return nil, errors.New("the command must be one JSON object")
	}
	mac := hex.EncodeToString(MAC(key, kind, caller, cmd))
	out := make([]byte, 0, len(cmd)+len(caller)+96)
	out = append(out, `{"caller":"`...)
	out = append(out, caller...)
	out = append(out, `","cmd":`...)
	out = append(out, cmd...)
	out = append(out, `,"mac":"`...)
	out = append(out, mac...)
	out = append(out, `"}`...)
	return out, nil
}

// Refusal is why a command was refused before it was executed. Error is
// what the sender may see ("refused: <short reason>"); Detail is for the
// log and the security event only.
type Refusal struct {
	Kind   security.Kind // RequestRefused or AccessDenied
	Short  string        // "no proof", "bad proof", "stale", "replayed", "malformed", "role", "busy"
	Detail string
	// Claimed is the caller name the message claims, when it is
	// well-formed; not an identity unless the proof verified.
	Claimed string
}

func (r *Refusal) Error() string { return "refused: " + r.Short }

func refuse(short, claimed, format string, args ...any) *Refusal {
	return &Refusal{Kind: security.RequestRefused, Short: short, Claimed: claimed, Detail: fmt.Sprintf(format, args...)}
}

// Identity is a verified sender.
type Identity struct {
	Name string
	Role security.Role
}

type caller struct {
	key  []byte
	role security.Role
}

// Verifier checks signed commands of one kind. Safe for concurrent use.
type Verifier struct {
	kind    string
	mode    string
	maxAge  time.Duration
	callers map[string]caller

	mu   sync.Mutex
	seen map[string]time.Time // caller "\x00" id → when it stops mattering
}

// NewVerifier reads every caller's key (the I/O Validate does not do).
// Errors name the caller and the key's source, never the key.
func NewVerifier(cfg Config, kind string) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{kind: kind, mode: cfg.Proof, maxAge: cfg.maxAge(), callers: map[string]caller{}, seen: map[string]time.Time{}}
	if v.mode == "" {
		v.mode = ProofHMAC
	}
	for _, c := range cfg.Callers {
		if v.mode == ProofBrokerTopic {
			v.callers[c.Name] = caller{role: c.Role}
			continue
		}
		s, err := c.Key.Resolve()
		if err != nil {
			return nil, fmt.Errorf("caller %s: key %s: %w", c.Name, c.Key, err)
		}
		k, err := DecodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("caller %s: key %s: %w", c.Name, c.Key, err)
		}
		v.callers[c.Name] = caller{key: k, role: c.Role}
	}
	return v, nil
}

// MaxAge is the accepted distance of issued_at from the clock.
func (v *Verifier) MaxAge() time.Duration { return v.maxAge }

// Filter is what to subscribe for commands on topic: topic itself with
// hmac, <topic>/by/+ with broker_topic.
func (v *Verifier) Filter(topic string) string {
	if v.mode == ProofBrokerTopic {
		return topic + "/by/+"
	}
	return topic
}

// OpenMessage checks a message received on msgTopic for commands
// subscribed with Filter(topic): with hmac it is Open; with broker_topic
// the caller is the level after <topic>/by/ (which the broker's ACL let
// only that user publish on) and the payload is the bare command.
func (v *Verifier) OpenMessage(topic, msgTopic string, msg []byte) (Identity, []byte, error) {
	if v.mode != ProofBrokerTopic {
		return v.Open(msg)
	}
	if len(msg) > MaxMessage {
		return Identity{}, nil, refuse("malformed", "", "message is %d bytes, the limit is %d", len(msg), MaxMessage)
	}
	name, ok := strings.CutPrefix(msgTopic, topic+"/by/")
	if !ok || ValidName(name) != nil {
		return Identity{}, nil, refuse("no proof", "", "not on %s/by/<user>", topic)
	}
	c, ok := v.callers[name]
	if !ok {
		return Identity{}, nil, refuse("bad proof", name, "unknown caller %s (broker user)", name)
	}
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 || msg[0] != '{' {
		return Identity{}, nil, refuse("malformed", name, "the command is not a JSON object")
	}
	return Identity{Name: name, Role: c.role}, msg, nil
}

// Open decodes an envelope and verifies its MAC. It returns the verified
// sender and the command bytes; anything else is a *Refusal. Freshness is
// checked by Fresh once the command is decoded.
func (v *Verifier) Open(msg []byte) (Identity, []byte, error) {
	if len(msg) > MaxMessage {
		return Identity{}, nil, refuse("malformed", "", "message is %d bytes, the limit is %d", len(msg), MaxMessage)
	}
	e, err := DecodeEnvelope(msg)
	if err != nil {
		var r *Refusal
		if errors.As(err, &r) {
			return Identity{}, nil, r
		}
		return Identity{}, nil, refuse("malformed", "", "%v", err)
	}
	c, ok := v.callers[e.Caller]
	// The same short reason for an unknown caller and a wrong MAC: the
	// reply must not tell an attacker which names exist.
	if !ok {
		return Identity{}, nil, refuse("bad proof", e.Caller, "unknown caller %s", e.Caller)
	}
	got, _ := hex.DecodeString(e.MAC) // DecodeEnvelope checked the form
	if !hmac.Equal(got, MAC(c.key, v.kind, e.Caller, e.Cmd)) {
		return Identity{}, nil, refuse("bad proof", e.Caller, "MAC does not match for caller %s", e.Caller)
	}
	return Identity{Name: e.Caller, Role: c.role}, e.Cmd, nil
}

// DecodeEnvelope parses an envelope strictly: the three fields, nothing
// else, cmd a JSON object, mac 64 hex digits. A message without caller
// or mac is refused as "no proof".
func DecodeEnvelope(msg []byte) (Envelope, error) {
	var e Envelope
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Envelope{}, refuse("no proof", "", "not a signed envelope {caller, cmd, mac}: %v", err)
	}
	if dec.More() {
		return Envelope{}, refuse("malformed", "", "data after the envelope")
	}
	if e.Caller == "" || e.MAC == "" || len(e.Cmd) == 0 {
		return Envelope{}, refuse("no proof", "", "envelope without caller, cmd or mac")
	}
	if err := ValidName(e.Caller); err != nil {
		return Envelope{}, refuse("malformed", "", "caller: %v", err)
	}
	if e.Cmd[0] != '{' {
		return Envelope{}, refuse("malformed", e.Caller, "cmd is not a JSON object")
	}
	if len(e.MAC) != 2*sha256.Size || !isHex(e.MAC) {
		return Envelope{}, refuse("bad proof", e.Caller, "mac is not %d hex digits", 2*sha256.Size)
	}
	return e, nil
}

// Fresh checks a verified command's issued_at against now and remembers
// its id until it would be stale, refusing an id seen before. Call it
// only after Open succeeded, so unsigned traffic cannot fill the set.
func (v *Verifier) Fresh(who Identity, id string, issued, now time.Time) error {
	switch {
	case id == "" || len(id) > MaxID:
		return refuse("malformed", who.Name, "a signed command needs an id (1..%d bytes), its nonce", MaxID)
	case issued.IsZero():
		return refuse("malformed", who.Name, "a signed command needs issued_at")
	case now.Sub(issued) > v.maxAge:
		return refuse("stale", who.Name, "issued %s ago, max_age is %s", now.Sub(issued).Round(time.Millisecond), v.maxAge)
	case issued.Sub(now) > v.maxAge:
		return refuse("stale", who.Name, "issued %s in the future, max_age is %s", issued.Sub(now).Round(time.Millisecond), v.maxAge)
	}
	key := who.Name + "\x00" + id
	v.mu.Lock()
	defer v.mu.Unlock()
	if until, ok := v.seen[key]; ok && now.Before(until) {
		return refuse("replayed", who.Name, "id %q was already used by %s", id, who.Name)
	}
	if len(v.seen) >= MaxRemembered {
		for k, until := range v.seen {
			if !now.Before(until) {
				delete(v.seen, k)
			}
		}
		if len(v.seen) >= MaxRemembered {
			return refuse("busy", who.Name, "%d commands within max_age are remembered already", MaxRemembered)
		}
	}
	// Stale from issued+max_age on; a future-dated command is remembered
	// as long, so it is covered too.
	v.seen[key] = issued.Add(v.maxAge + time.Millisecond)
	return nil
}

// Authorize refuses a verified caller whose role does not include need.
func Authorize(who Identity, need security.Role) error {
	if who.Role.Includes(need) {
		return nil
	}
	return &Refusal{Kind: security.AccessDenied, Short: "role", Claimed: who.Name,
		Detail: fmt.Sprintf("caller %s has role %s; %s is required", who.Name, who.Role, need)}
}
