package cmdproof

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ParseIssuedAt reads a command's issued_at: integer unix milliseconds or
// an RFC 3339 string. A missing one is an error: without it a command
// could be replayed at any time.
func ParseIssuedAt(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return time.Time{}, errors.New("command needs issued_at (unix ms or RFC 3339)")
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
