package mqttcmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

// Command is one write command, the cmd object of a signed envelope
// (see internal/cmdproof) on the command topic:
//
//	{"caller": "alice", "cmd": {"path": "plant1/line2/setpoint", "value": 42.5,
//	  "issued_at": 1764112800000, "reason": "recipe B", "id": "c-17"}, "mac": "…"}
//
// path, value, issued_at and id are required. issued_at is unix
// milliseconds or an RFC 3339 string and must be within the proof's
// max_age of the clock (the gate checks its own max_age too); id is the
// nonce: a command with an id already used is refused as a replay. The
// caller is the one the MAC proves, never a field of the command.
type Command struct {
	ID       string
	Path     string
	Value    model.Value
	IssuedAt time.Time
	Reason   string
	// User and Role are the verified sender (set after the proof is
	// checked; DecodeCommand leaves them empty). The gate sees caller
	// "mqtt:<User>".
	User string
	Role security.Role
}

// wireCommand is the JSON form, decoded strictly.
type wireCommand struct {
	Path     string          `json:"path"`
	Value    json.RawMessage `json:"value"`
	IssuedAt json.RawMessage `json:"issued_at"`
	Reason   string          `json:"reason"`
	ID       string          `json:"id"`
}

// Limits of a command's fields.
const (
	maxCommandSize = 16 << 10
	maxID          = cmdproof.MaxID
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
		return c, fmt.Errorf("command is not a JSON object {path, value, issued_at, reason, id}: %w", err)
	}
	if dec.More() {
		return c, errors.New("command has data after the JSON object")
	}
	if w.ID == "" || len(w.ID) > maxID {
		return c, fmt.Errorf("command needs an id (1..%d bytes; a nonce, e.g. a UUID)", maxID)
	}
	c.ID, c.Path, c.Reason = w.ID, w.Path, w.Reason
	if err := model.ValidatePath(w.Path); err != nil {
		return c, fmt.Errorf("path: %w", err)
	}
	if len(w.Reason) > maxReason {
		return c, fmt.Errorf("reason is longer than %d bytes", maxReason)
	}
	v, err := decodeScalar(w.Value)
	if err != nil {
		return c, err
	}
	c.Value = v
	t, err := cmdproof.ParseIssuedAt(w.IssuedAt)
	if err != nil {
		return c, err
	}
	c.IssuedAt = t
	return c, nil
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

// Reply is the JSON published on <topic>/result for every command.
type Reply struct {
	ID     string          `json:"id"`
	Path   string          `json:"path"`
	Result audit.Result    `json:"result"`
	Reason string          `json:"reason"`
	Old    json.RawMessage `json:"old"`
	New    json.RawMessage `json:"new"`
}
