package model

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
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
// A leading '$' is refused too: brokers reserve such topics ($SYS). The
// path must be UTF-8: MQTT topics, NATS subjects, JSON and PostgreSQL text
// all require it. Sources pass names they do not control (a Sparkplug
// metric name, a topic level) through EscapePath first.
func ValidatePath(p string) error {
	if p == "" {
		return errors.New("tag path is empty")
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("tag path %q is not valid UTF-8", p)
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

// EscapePath is the one escaping rule for names that come from outside
// (devices, brokers, payloads) before they become tag paths: every byte a
// path cannot carry is percent-encoded as %XX (upper-case hex) — a byte
// that is not part of valid UTF-8, the MQTT wildcards '+' and '#', NUL and
// the other control characters (0x00–0x1F, 0x7F), a leading '$', and
// leading or trailing spaces. So the Sparkplug metric "bad\xffname"
// becomes the tag "bad%FFname" and "a+b" becomes "a%2Bb". '/' separates
// levels and is kept; '%' itself is kept too, so existing paths never
// change, which makes the rule one-way: "a%2Bb" may also have been
// written that way. What escaping cannot fix (an empty level, too long,
// too many levels) is still refused by ValidatePath. p is returned
// unchanged, without allocating, when nothing needs escaping.
func EscapePath(p string) string {
	if !needsPathEscape(p) {
		return p
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(p)+8)
	esc := func(c byte) { b = append(b, '%', hex[c>>4], hex[c&0xf]) }
	lead := len(p) - len(strings.TrimLeft(p, " "))
	trail := len(strings.TrimRight(p, " "))
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case i < lead || i >= trail && c == ' ',
			i == 0 && c == '$',
			c == '+' || c == '#' || c < 0x20 || c == 0x7f:
			esc(c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(p[i:])
		if r == utf8.RuneError && n == 1 {
			esc(c)
			i++
			continue
		}
		b = append(b, p[i:i+n]...)
		i += n
	}
	return string(b)
}

// needsPathEscape reports whether EscapePath would change p.
func needsPathEscape(p string) bool {
	if p == "" {
		return false
	}
	if p[0] == '$' || p[0] == ' ' || p[len(p)-1] == ' ' || !utf8.ValidString(p) {
		return true
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '+' || c == '#' || c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}
