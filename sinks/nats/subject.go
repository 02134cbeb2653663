package nats

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/weir-edge/weir/model"
)

// Subject mapping. A tag path "plant/line 1/temp.1" under the prefix
// "weir.v1" becomes the subject "weir.v1.plant.line%201.temp%2E1": '/'
// separates NATS tokens, and inside a level every byte a NATS token cannot
// carry verbatim is percent-encoded as %XX (upper-case hex): '.', '*', '>',
// spaces and other whitespace, control characters and '%' itself, so the
// mapping is reversible (PathOf). Other bytes, UTF-8 included, pass
// unchanged. Escaping rather than refusing keeps tags named like "temp.1"
// or "40001.0" deliverable; subscribers match them with the escaped token.

const hexUpper = "0123456789ABCDEF"

// needsEscape reports whether b cannot appear verbatim inside a subject
// token.
func needsEscape(b byte) bool {
	switch b {
	case '.', '*', '>', '%', ' ', 0x7f:
		return true
	}
	return b < 0x20
}

// appendLevel appends one path level to dst, escaped.
func appendLevel(dst []byte, level string) []byte {
	for i := 0; i < len(level); i++ {
		c := level[i]
		if needsEscape(c) {
			dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&0xf])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// Subject returns the subject for a tag (or asset) path under prefix. path
// must be a valid tag path (model.ValidatePath); an empty path maps to the
// prefix itself, which is where batch mode publishes assets of single-level
// paths.
func Subject(prefix, path string) (string, error) {
	if path == "" {
		return prefix, nil
	}
	if err := model.ValidatePath(path); err != nil {
		return "", err
	}
	b := make([]byte, 0, len(prefix)+1+len(path)+8)
	b = append(b, prefix...)
	for level := range strings.SplitSeq(path, "/") {
		b = append(b, '.')
		b = appendLevel(b, level)
	}
	if len(b) > maxSubjectLen {
		return "", fmt.Errorf("subject for %q is %d bytes long, the limit is %d", path, len(b), maxSubjectLen)
	}
	return string(b), nil
}

// PathOf reverses Subject: it returns the tag (or asset) path of subject
// under prefix, "" for the prefix itself. Consumers use it to turn
// subjects back into unified-namespace paths.
func PathOf(prefix, subject string) (string, error) {
	if subject == prefix {
		return "", nil
	}
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return "", fmt.Errorf("subject %q is not under prefix %q", subject, prefix)
	}
	var b strings.Builder
	b.Grow(len(rest))
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == '.':
			b.WriteByte('/')
		case c == '%':
			if i+2 >= len(rest) {
				return "", fmt.Errorf("subject %q: truncated escape at byte %d", subject, len(prefix)+1+i)
			}
			hi, ok1 := unhex(rest[i+1])
			lo, ok2 := unhex(rest[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("subject %q: invalid escape at byte %d", subject, len(prefix)+1+i)
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	p := b.String()
	if err := model.ValidatePath(p); err != nil {
		return "", fmt.Errorf("subject %q: %w", subject, err)
	}
	return p, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// validatePrefix checks subject_prefix: dot-separated non-empty tokens,
// no wildcards, no spaces or control characters, no leading '$' (the
// server reserves $JS, $SYS, $KV…), bounded length.
func validatePrefix(p string) error {
	switch {
	case len(p) > maxPrefixLen:
		return fmt.Errorf("is %d bytes long, the limit is %d", len(p), maxPrefixLen)
	case p[0] == '$':
		return fmt.Errorf("%q starts with '$', which NATS reserves", p)
	case strings.ContainsAny(p, "*>"):
		return fmt.Errorf("%q contains a wildcard", p)
	case strings.ContainsFunc(p, isSpaceOrControl):
		return fmt.Errorf("%q contains spaces or control characters", p)
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" {
			return fmt.Errorf("%q has an empty token", p)
		}
	}
	return nil
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
