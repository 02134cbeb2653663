package mqttcmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
)

// Command is one write command, the JSON payload on the command topic:
//
//	{"path": "plant1/line2/setpoint", "value": 42.5, "user": "alice",
//	 "issued_at": 1764112800000, "reason": "recipe B", "id": "c-17"}
//
// path, value, user and issued_at are required. issued_at is unix
// milliseconds or an RFC 3339 string; the gate refuses commands older than
// its max_age, so a replayed command is refused.
type Command struct {
	ID       string
	Path     string
	Value    model.Value
	User     string
	IssuedAt time.Time
	Reason   string
}

// wireCommand is the JSON form, decoded strictly.
type wireCommand struct {
	Path     string          `json:"path"`
	Value    json.RawMessage `json:"value"`
	User     string          `json:"user"`
	IssuedAt json.RawMessage `json:"issued_at"`
	Reason   string          `json:"reason"`
	ID       string          `json:"id"`
}

// Limits of a command's fields.
const (
	maxCommandSize = 16 << 10
	maxUser        = 128
	maxID          = 128
	maxReason      = 1024
)

// DecodeCommand parses and checks one command payload. On error the
// returned Command holds what could be read (ID and Path), so the refusal
// can still be correlated by the sender.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if len(b) > maxCommandSize {
		return c, fmt.Errorf("command is %d bytes, the limit is %d", len(b), maxCommandSize)
	}
	var w wireCommand
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return c, fmt.Errorf("command is not a JSON object {path, value, user, issued_at, reason, id}: %w", err)
	}
	if dec.More() {
		return c, errors.New("command has data after the JSON object")
	}
	if len(w.ID) > maxID {
		return c, fmt.Errorf("id is longer than %d bytes", maxID)
	}
	c.ID, c.Path, c.User, c.Reason = w.ID, w.Path, w.User, w.Reason
	if err := model.ValidatePath(w.Path); err != nil {
		return c, fmt.Errorf("path: %w", err)
	}
	if err := validUser(w.User); err != nil {
		return c, err
	}
	if len(w.Reason) > maxReason {
		return c, fmt.Errorf("reason is longer than %d bytes", maxReason)
	}
	v, err := decodeScalar(w.Value)
	if err != nil {
		return c, err
	}
	c.Value = v
	t, err := decodeIssuedAt(w.IssuedAt)
	if err != nil {
		return c, err
	}
	c.IssuedAt = t
	return c, nil
}

// validUser accepts 1..128 bytes of [A-Za-z0-9_.@-]: the identity becomes
// part of the caller "mqtt:<user>" that policies match and the trail
// records, so it must not carry separators or control characters.
func validUser(u string) error {
	if u == "" || len(u) > maxUser {
		return fmt.Errorf("command needs a user (1..%d bytes)", maxUser)
	}
	for i := 0; i < len(u); i++ {
		switch ch := u[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9',
			ch == '_', ch == '.', ch == '@', ch == '-':
		default:
			return fmt.Errorf("user %q may only hold A-Z a-z 0-9 _ . @ -", u)
		}
	}
	return nil
}

// decodeScalar decodes the value: a JSON bool, number or string.
func decodeScalar(raw json.RawMessage) (model.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return model.Value{}, errors.New("command needs a value")
	}
	if raw[0] == '[' || raw[0] == '{' {
		return model.Value{}, errors.New("value must be a JSON bool, number or string")
	}
	v, err := audit.DecodeValue(raw)
	if err != nil {
		return model.Value{}, fmt.Errorf("value: %w", err)
	}
	return v, nil
}

// decodeIssuedAt reads unix milliseconds or an RFC 3339 string. A missing
// issue time is refused: such a command could be replayed at any time.
func decodeIssuedAt(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return time.Time{}, errors.New("command needs issued_at (unix ms or RFC 3339): without it a command could be replayed")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, fmt.Errorf("issued_at: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
		if err != nil {
			return time.Time{}, fmt.Errorf("issued_at: not RFC 3339: %w", err)
		}
		return t, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, fmt.Errorf("issued_at: not unix ms or an RFC 3339 string: %w", err)
	}
	ms, err := n.Int64()
	if err != nil || ms <= 0 {
		return time.Time{}, fmt.Errorf("issued_at: %s is not positive integer unix milliseconds", n)
	}
	return time.UnixMilli(ms), nil
}

// Reply is the JSON published on <topic>/result for every command.
type Reply struct {
	ID     string          `json:"id"`
	Path   string          `json:"path"`
	Result audit.Result    `json:"result"`
	Reason string          `json:"reason"`
	Old    json.RawMessage `json:"old"`
	New    json.RawMessage `json:"new"`
}
