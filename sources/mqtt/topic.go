package mqtt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// parseFilter validates an MQTT topic filter and returns the part topics are
// matched against: a shared subscription "$share/<group>/<filter>" matches
// like <filter>.
func parseFilter(f string) (string, error) {
	if f == "" {
		return "", errors.New("topic filter is empty")
	}
	if len(f) > 65535 {
		return "", errors.New("topic filter is longer than 65535 bytes")
	}
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		group, filter, found := strings.Cut(rest, "/")
		if !found || group == "" || strings.ContainsAny(group, "+#") {
			return "", fmt.Errorf("shared subscription %q must be $share/<group>/<filter>", f)
		}
		f = filter
		if f == "" {
			return "", fmt.Errorf("shared subscription %q has an empty filter", f)
		}
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case strings.Contains(l, "#") && (l != "#" || i != len(levels)-1):
			return "", fmt.Errorf("topic filter %q: '#' must be a whole level and the last one", f)
		case strings.Contains(l, "+") && l != "+":
			return "", fmt.Errorf("topic filter %q: '+' must be a whole level", f)
		case strings.ContainsRune(l, 0):
			return "", fmt.Errorf("topic filter %q contains NUL", f)
		}
	}
	return f, nil
}

// matchTopic reports whether topic matches filter (MQTT 3.1.1 §4.7).
// Topics starting with '$' are not matched by a leading wildcard.
func matchTopic(filter, topic string) bool {
	if topic != "" && topic[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a".
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// prefixCanMatch reports whether some topic matching filter can start with
// prefix, so that strip_prefix typos are caught by Validate.
func prefixCanMatch(filter, prefix string) bool {
	fl := strings.Split(filter, "/")
	pl := strings.Split(prefix, "/")
	for i, p := range pl {
		if i >= len(fl) {
			return false
		}
		switch f := fl[i]; {
		case f == "#":
			return true
		case f == "+":
		case i == len(pl)-1:
			return strings.HasPrefix(f, p)
		case f != p:
			return false
		}
	}
	return true
}

// template is a parsed tag path template: literal parts and placeholders.
type template struct {
	parts []tmplPart
	// usesLevels is set when a placeholder needs the topic split in levels.
	usesLevels bool
}

type tmplPart struct {
	lit   string
	index int // -1: literal; -2: whole topic; ≥0: level
	rest  bool
}

// parseTemplate parses a path template: literal text with {topic}, {N} and
// {N+} placeholders (N a 0-based topic level). Braces have no escape: tag
// paths never need them.
func parseTemplate(s string) (template, error) {
	var t template
	for s != "" {
		open := strings.IndexByte(s, '{')
		if closeAt := strings.IndexByte(s, '}'); closeAt >= 0 && (open < 0 || closeAt < open) {
			return template{}, errors.New("path template has a '}' without '{'")
		}
		if open < 0 {
			t.parts = append(t.parts, tmplPart{lit: s, index: -1})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, tmplPart{lit: s[:open], index: -1})
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return template{}, errors.New("path template has a '{' without '}'")
		}
		name := s[open+1 : open+end]
		switch {
		case name == "topic":
			t.parts = append(t.parts, tmplPart{index: -2})
		default:
			num, rest := strings.CutSuffix(name, "+")
			n, err := strconv.Atoi(num)
			if err != nil || n < 0 || n > 1000 || num == "" || num[0] == '+' {
				return template{}, fmt.Errorf("path template placeholder {%s} is not {topic}, {N} or {N+}", name)
			}
			t.parts = append(t.parts, tmplPart{index: n, rest: rest})
			t.usesLevels = true
		}
		s = s[open+end+1:]
	}
	if len(t.parts) == 0 {
		return template{}, errors.New("path template is empty")
	}
	return t, nil
}

// render builds the tag path for topic (strip_prefix already removed).
func (t *template) render(topic string) (string, error) {
	var levels []string
	if t.usesLevels {
		levels = strings.Split(topic, "/")
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch {
		case p.index == -1:
			b.WriteString(p.lit)
		case p.index == -2:
			b.WriteString(topic)
		case p.index >= len(levels):
			return "", fmt.Errorf("topic %q has no level %d", topic, p.index)
		case p.rest:
			b.WriteString(strings.Join(levels[p.index:], "/"))
		default:
			b.WriteString(levels[p.index])
		}
	}
	return b.String(), nil
}
