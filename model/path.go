package model

import (
	"errors"
	"fmt"
	"strings"
)

// MaxPathLevels and MaxPathLen bound a tag path so that every sink can carry
// it: MQTT topics may be up to 65535 bytes, but brokers and databases impose
// their own limits far lower.
const (
	MaxPathLevels = 32
	MaxPathLen    = 1024
)

// ValidatePath checks a tag path in the unified namespace:
// "enterprise/site/area/line/cell/…/tag". Levels are separated by '/', none
// may be empty, and none may contain the MQTT wildcards '+' and '#', a NUL,
// or control characters, because the path becomes an MQTT topic verbatim.
// A leading '$' is refused too: brokers reserve such topics ($SYS).
func ValidatePath(p string) error {
	if p == "" {
		return errors.New("tag path is empty")
	}
	if len(p) > MaxPathLen {
		return fmt.Errorf("tag path is %d bytes long, the limit is %d", len(p), MaxPathLen)
	}
	if p[0] == '$' {
		return fmt.Errorf("tag path %q starts with '$', which MQTT brokers reserve", p)
	}
	levels := 1
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			c := p[i]
			switch {
			case c == '+' || c == '#':
				return fmt.Errorf("tag path %q contains the MQTT wildcard %q", p, c)
			case c < 0x20 || c == 0x7f:
				return fmt.Errorf("tag path %q contains a control character at byte %d", p, i)
			}
			continue
		}
		if i == start {
			return fmt.Errorf("tag path %q has an empty level at byte %d", p, i)
		}
		if i < len(p) {
			levels++
		}
		start = i + 1
	}
	if levels > MaxPathLevels {
		return fmt.Errorf("tag path %q has %d levels, the limit is %d", p, levels, MaxPathLevels)
	}
	if strings.TrimSpace(p) != p {
		return fmt.Errorf("tag path %q has leading or trailing spaces", p)
	}
	return nil
}

// JoinPath joins namespace levels with '/', skipping empty parts.
func JoinPath(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		p = strings.Trim(p, "/")
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p)
	}
	return b.String()
}
