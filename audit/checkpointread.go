package audit

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
)

// Checkpoints reach IT in whatever form its tools keep them, and `weir
// audit verify -checkpoint` takes each as received, one a line:
//
//   - the bare checkpoint (the checkpoint file);
//   - the audit.checkpoint event's JSON (the checkpoint is its "detail");
//   - a sink's payload of that event's sample: MQTT, NATS and Kafka carry
//     {"value":"<event JSON>",…}, their batch form {"samples":[…]}, the
//     HTTP sink {"node":…,"samples":[{"path":…,"value":…},…]};
//   - the RFC 5424 syslog line (its MSG is the detail), also behind a
//     collector's own prefix or octet count.
//
// JSON is searched as a tree, strings holding JSON included, to a fixed
// depth; what is neither a checkpoint nor leads to one is skipped.

// maxNesting bounds the search into JSON held in JSON strings: a
// checkpoint in an event in a sample in an HTTP body is 6 deep.
const maxNesting = 10

// maxLineBytes bounds one line (an HTTP sink's body can be a few MiB).
const maxLineBytes = 16 << 20

// syslogHead finds an RFC 5424 header: <PRI>1 and a space.
var syslogHead = regexp.MustCompile(`<[0-9]{1,3}>1 `)

// ReadCheckpointList returns every checkpoint in r (ReadCheckpoints'
// forms), newest first: highest seq, then latest time; duplicates once.
// When no line holds one, the whole input is tried as one JSON document
// (a pretty-printed file).
func ReadCheckpointList(r io.Reader) ([]Checkpoint, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCheckpointFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCheckpointFile {
		return nil, fmt.Errorf("more than %d MiB of checkpoints: keep the newest", maxCheckpointFile>>20)
	}
	var found []Checkpoint
	add := func(c Checkpoint) { found = append(found, c) }
	for line := range bytes.Lines(data) {
		if len(line) > maxLineBytes {
			continue
		}
		findCheckpoints(line, maxNesting, add)
	}
	if len(found) == 0 {
		findCheckpoints(data, maxNesting, add)
	}
	if len(found) == 0 {
		return nil, errors.New("no checkpoint found: want lines each holding a checkpoint, an audit.checkpoint event, a sink's payload of one, or its syslog line")
	}
	slices.SortFunc(found, func(a, b Checkpoint) int {
		if c := cmp.Compare(b.Seq, a.Seq); c != 0 {
			return c
		}
		return b.Time.Compare(a.Time)
	})
	return slices.CompactFunc(found, func(a, b Checkpoint) bool { return a.Sig == b.Sig && a.PubKey == b.PubKey }), nil
}

// ReadCheckpoints returns the newest checkpoint in r (ReadCheckpointList),
// whether or not its signature verifies.
func ReadCheckpoints(r io.Reader) (Checkpoint, error) {
	list, err := ReadCheckpointList(r)
	if err != nil {
		return Checkpoint{}, err
	}
	return list[0], nil
}

// NewestVerified returns the first checkpoint of list (newest first) that
// pub signed, and how many newer ones it skipped (another node's, or
// forged). None verifying: the newest one's error.
func NewestVerified(list []Checkpoint, pub ed25519.PublicKey) (cp Checkpoint, skipped int, err error) {
	if len(list) == 0 {
		return Checkpoint{}, 0, errors.New("no checkpoint")
	}
	for i, c := range list {
		if c.Verify(pub) == nil {
			return c, i, nil
		}
	}
	return Checkpoint{}, len(list), list[0].Verify(pub)
}

// findCheckpoints calls add for each checkpoint in b: b itself, within
// its JSON, or in the MSG of a syslog line in it.
func findCheckpoints(b []byte, depth int, add func(Checkpoint)) {
	b = bytes.TrimPrefix(bytes.TrimSpace(b), []byte(bom))
	if len(b) == 0 || depth < 0 {
		return
	}
	switch b[0] {
	case '{':
		if c, err := ParseCheckpoint(b); err == nil {
			add(c)
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) == nil {
			for _, v := range m {
				findCheckpoints(v, depth-1, add)
			}
			return
		}
	case '[':
		var a []json.RawMessage
		if json.Unmarshal(b, &a) == nil {
			for _, v := range a {
				findCheckpoints(v, depth-1, add)
			}
			return
		}
	case '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			if t := bytes.TrimSpace([]byte(s)); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
				findCheckpoints(t, depth-1, add)
			}
			return
		}
	}
	if msg, ok := syslogMsg(b); ok {
		findCheckpoints(msg, depth-1, add)
		return
	}
	// "TOPIC {json}", as mosquitto_sub -v (and kcat -K' ') print a message.
	if i := bytes.Index(b, []byte(" {")); i > 0 {
		findCheckpoints(b[i+1:], depth-1, add)
	}
}

// bom is the UTF-8 byte order mark a syslog MSG starts with when it is
// not plain ASCII (RFC 5424 §6.4).
const bom = "\xef\xbb\xbf"

// syslogMsg returns the MSG of the RFC 5424 message in line (found after
// anything a collector put before it): past the header's six fields and
// the structured data, whose values may hold escaped '"', '\' and ']'.
func syslogMsg(line []byte) ([]byte, bool) {
	loc := syslogHead.FindIndex(line)
	if loc == nil {
		return nil, false
	}
	rest := line[loc[1]:]
	for range 5 { // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			return nil, false
		}
		rest = rest[i+1:]
	}
	if len(rest) > 0 && rest[0] == '-' {
		rest = rest[1:]
	}
	for len(rest) > 0 && rest[0] == '[' {
		i := sdElementEnd(rest)
		if i < 0 {
			return nil, false
		}
		rest = rest[i+1:]
	}
	return bytes.TrimPrefix(rest, []byte(" ")), true
}

// sdElementEnd is the index of the ']' closing the SD-ELEMENT el starts
// with, -1 when none: in quoted values '\' escapes the next byte.
func sdElementEnd(el []byte) int {
	quoted := false
	for i := 1; i < len(el); i++ {
		switch c := el[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == ']':
			return i
		}
	}
	return -1
}
