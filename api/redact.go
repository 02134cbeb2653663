package api

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Password hashes are not secrets' references but the secrets' digests:
// an engineer reading the configuration (GET /api/v1/config, the UI's
// config page) must not get them to crack offline. They are shown as
// RedactedHash; a configuration sent back with the placeholder keeps the
// running hash of the user of the same name.

// RedactedHash replaces every auth.users[].password_hash value shown.
const RedactedHash = "<redacted>"

// hashLine matches a password_hash key and its value on one line (block
// or flow style, plain or quoted), in YAML and in a diff's lines. A plain
// value may hold commas (argon2's "m=65536,t=3,p=4"), not ", ".
var hashLine = regexp.MustCompile(`(password_hash\s*:[ \t]*)("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#,{}\[\]]+(?:,[^\s#,{}\[\]]+)*)`)

// redactHashes returns text with every password_hash value replaced by
// RedactedHash.
func redactHashes(text string) string {
	if !strings.Contains(text, "password_hash") {
		return text
	}
	return hashLine.ReplaceAllString(text, "${1}"+RedactedHash)
}

// usersNode returns the auth.users sequence of a parsed document, or nil.
func usersNode(doc *yaml.Node) *yaml.Node {
	if doc == nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	auth := mapValue(doc.Content[0], "auth")
	users := mapValue(auth, "users")
	if users == nil || users.Kind != yaml.SequenceNode {
		return nil
	}
	return users
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// restoreHashes puts the running hash back where data carries the
// placeholder: for each auth.users[] item whose password_hash is
// RedactedHash, the hash of the running user of the same name. A
// placeholder without such a user is an error (set a real hash with weir
// user hash-password). data is returned unchanged when it holds no
// placeholder or does not parse (validation then says why).
func restoreHashes(data []byte, running string) ([]byte, error) {
	if !strings.Contains(string(data), RedactedHash) {
		return data, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return data, nil
	}
	var run yaml.Node
	hashes := map[string]string{}
	if yaml.Unmarshal([]byte(running), &run) == nil {
		if us := usersNode(&run); us != nil {
			for _, u := range us.Content {
				n, h := mapValue(u, "name"), mapValue(u, "password_hash")
				if n != nil && h != nil && h.Kind == yaml.ScalarNode {
					hashes[n.Value] = h.Value
				}
			}
		}
	}
	lines := strings.Split(string(data), "\n")
	us := usersNode(&doc)
	if us == nil {
		return data, nil
	}
	// Right to left on a line, so earlier columns stay valid (flow style).
	for i := len(us.Content) - 1; i >= 0; i-- {
		u := us.Content[i]
		h := mapValue(u, "password_hash")
		if h == nil || h.Kind != yaml.ScalarNode || h.Value != RedactedHash {
			continue
		}
		name := ""
		if n := mapValue(u, "name"); n != nil {
			name = n.Value
		}
		hash, ok := hashes[name]
		if !ok {
			return nil, fmt.Errorf("line %d: auth.users[%d].password_hash: %s stands for the running hash, but the running configuration has no user %q with one; set a hash (weir user hash-password)", h.Line, i, RedactedHash, name)
		}
		ln, col := h.Line-1, h.Column-1
		if ln < 0 || ln >= len(lines) || col < 0 || col > len(lines[ln]) {
			return nil, fmt.Errorf("line %d: auth.users[%d].password_hash: cannot restore the running hash", h.Line, i)
		}
		rest := lines[ln][col:]
		// The placeholder as written: plain, or quoted.
		var tok string
		for _, t := range []string{RedactedHash, `"` + RedactedHash + `"`, `'` + RedactedHash + `'`} {
			if strings.HasPrefix(rest, t) {
				tok = t
			}
		}
		if tok == "" {
			return nil, fmt.Errorf("line %d: auth.users[%d].password_hash: cannot restore the running hash", h.Line, i)
		}
		lines[ln] = lines[ln][:col] + strconv.Quote(hash) + rest[len(tok):]
	}
	return []byte(strings.Join(lines, "\n")), nil
}
