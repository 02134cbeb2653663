package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/weir-edge/weir/model"
)

// Result is the outcome of one write attempt.
type Result string

// The outcomes recorded in the trail.
const (
	// Allowed: every check passed and the device confirmed the value by
	// read-back.
	Allowed Result = "allowed"
	// Denied: a check refused the write; nothing reached the device.
	Denied Result = "denied"
	// Failed: the checks passed but the device write, its read-back or the
	// lookup of the device failed.
	Failed Result = "failed"
)

// Genesis is the prev_hash of a trail's first entry: 64 zeros, so a chain
// cannot start anywhere but at its beginning.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one line of the trail.
// Its JSON form (MarshalJSON) is the stored line.
type Entry struct {
	Seq    uint64
	Time   time.Time   // UTC
	Caller string      // who asked: "api:alice", "rule:overheat"
	Path   string      // the tag
	Old    model.Value // before the write; invalid (JSON null) when unknown
	New    model.Value // the value asked for
	Result Result
	// Reason says why: the refusal or the error for denied and failed, ""
	// for allowed.
	Reason string
	// Note is the reason the caller gave for the write.
	Note string

	// The members below are newer than the trail format; each is written
	// only when it is not empty, so a write entry without them hashes the
	// same bytes as before and old trails verify unchanged.

	// Kind is empty for a write attempt, or the security.Kind of any other
	// security-relevant action ("auth.login_failed", "alarm.command"…),
	// for which Path names what was acted on and Result is empty.
	Kind string
	// Role is the caller's role when its authentication gave one.
	Role string
	// Remote is the peer's network address, when there is one.
	Remote string
	// Component is the part of Weir that saw a non-write action.
	Component string
	// Outcome of a non-write action: "ok", "denied", "failed", "refused".
	Outcome string
	// Detail says why, for a non-write action.
	Detail string

	PrevHash string
	Hash     string
}

// MaxText bounds every free-text member of an entry (caller, path,
// reason, note, detail…): a longer one is cut at a character boundary and
// ends in a marker saying how much was cut. A caller controls these
// strings; without the bound a flood of 60 KB reasons fills the disk, and
// with rotation pushes history away.
const MaxText = 1 << 10

// MaxConfigDetail bounds the Detail of a config.applied entry instead:
// the gateway puts the hash, every line of the component-level diff (at
// most 4 KiB of them) and the restart keys there, so the trail says what
// each apply changed. Still bounded; only the gateway records the kind.
const MaxConfigDetail = 6 << 10

// capText cuts s to at most MaxText bytes plus the marker.
func capText(s string) string { return capTextAt(s, MaxText) }

// capTextAt cuts s to at most max bytes plus the marker.
func capTextAt(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[cut " + strconv.Itoa(len(s)-cut) + " bytes]"
}

// capTexts applies capText to every free-text member.
func (e *Entry) capTexts() {
	for _, p := range []*string{&e.Caller, &e.Path, &e.Reason, &e.Note, &e.Kind, &e.Role, &e.Remote,
		&e.Component, &e.Outcome} {
		*p = capText(*p)
	}
	if e.Kind == "config.applied" {
		e.Detail = capTextAt(e.Detail, MaxConfigDetail)
	} else {
		e.Detail = capText(e.Detail)
	}
}

// MarshalJSON writes the entry exactly as the trail stores it.
func (e Entry) MarshalJSON() ([]byte, error) { return appendLine(nil, &e), nil }

// hashSuffixLen is the length of `,"hash":"<64 hex>"}` that ends a line.
const hashSuffixLen = len(`,"hash":"`) + 64 + len(`"}`)

// appendCanonical appends the entry without its hash: the bytes the hash
// covers. The field order is fixed and strings are escaped by
// model.AppendJSONString, so one entry has exactly one encoding.
func appendCanonical(dst []byte, e *Entry) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","caller":`...)
	dst = model.AppendJSONString(dst, e.Caller)
	dst = append(dst, `,"path":`...)
	dst = model.AppendJSONString(dst, e.Path)
	dst = append(dst, `,"old":`...)
	dst = e.Old.AppendJSON(dst)
	dst = append(dst, `,"new":`...)
	dst = e.New.AppendJSON(dst)
	dst = append(dst, `,"result":`...)
	dst = model.AppendJSONString(dst, string(e.Result))
	dst = append(dst, `,"reason":`...)
	dst = model.AppendJSONString(dst, e.Reason)
	dst = append(dst, `,"note":`...)
	dst = model.AppendJSONString(dst, e.Note)
	for _, m := range [...]struct{ key, val string }{{`,"kind":`, e.Kind}, {`,"role":`, e.Role},
		{`,"remote":`, e.Remote}, {`,"component":`, e.Component}, {`,"outcome":`, e.Outcome}, {`,"detail":`, e.Detail}} {
		if m.val != "" {
			dst = append(dst, m.key...)
			dst = model.AppendJSONString(dst, m.val)
		}
	}
	dst = append(dst, `,"prev_hash":"`...)
	dst = append(dst, e.PrevHash...)
	return append(dst, `"}`...)
}

// appendLine appends the complete line of an entry whose Hash is set,
// without the newline.
func appendLine(dst []byte, e *Entry) []byte {
	dst = appendCanonical(dst, e)
	dst = append(dst[:len(dst)-1], `,"hash":"`...)
	dst = append(dst, e.Hash...)
	return append(dst, `"}`...)
}

// hasher computes entry hashes: SHA-256 of the canonical bytes, or
// HMAC-SHA-256 under a key, so that someone who can rewrite the file but
// does not hold the key cannot forge a consistent chain.
type hasher struct{ key []byte }

func (h hasher) sum(canonical []byte) string {
	if len(h.key) > 0 {
		m := hmac.New(sha256.New, h.key)
		m.Write(canonical)
		return hex.EncodeToString(m.Sum(nil))
	}
	s := sha256.Sum256(canonical)
	return hex.EncodeToString(s[:])
}

// canonicalOf recovers the hashed bytes from a stored line: the line with
// its final `,"hash":"…"` member removed. The hash member must be the last
// one, as the writer puts it, with exactly the value parsed from it.
func canonicalOf(line []byte, hash string) ([]byte, error) {
	if len(line) < hashSuffixLen+2 {
		return nil, errors.New("line too short to carry a hash")
	}
	cut := len(line) - hashSuffixLen
	suffix := line[cut:]
	if !bytes.HasPrefix(suffix, []byte(`,"hash":"`)) || string(suffix[9:9+64]) != hash || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return nil, errors.New(`"hash" is not the last member (entry rewritten?)`)
	}
	out := make([]byte, 0, cut+1)
	out = append(out, line[:cut]...)
	return append(out, '}'), nil
}

// wireEntry is the strict shape of a line; pointers tell a missing member
// from a zero one.
type wireEntry struct {
	Seq    *uint64         `json:"seq"`
	Time   *string         `json:"time"`
	Caller *string         `json:"caller"`
	Path   *string         `json:"path"`
	Old    json.RawMessage `json:"old"`
	New    json.RawMessage `json:"new"`
	Result *string         `json:"result"`
	Reason *string         `json:"reason"`
	Note   *string         `json:"note"`
	// Optional members (newer than the format).
	Kind      string  `json:"kind"`
	Role      string  `json:"role"`
	Remote    string  `json:"remote"`
	Component string  `json:"component"`
	Outcome   string  `json:"outcome"`
	Detail    string  `json:"detail"`
	PrevHash  *string `json:"prev_hash"`
	Hash      *string `json:"hash"`
}

// ParseLine decodes one line of the trail (without its newline). It checks
// the shape only: every member present, no unknown ones, hashes as 64 hex
// digits, a known result. It does not check the hash; Verify does.
func ParseLine(line []byte) (Entry, error) {
	var w wireEntry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Entry{}, fmt.Errorf("not a JSON entry: %w", err)
	}
	if dec.More() {
		return Entry{}, errors.New("data after the entry")
	}
	switch {
	case w.Seq == nil, w.Time == nil, w.Caller == nil, w.Path == nil, w.Old == nil, w.New == nil,
		w.Result == nil, w.Reason == nil, w.Note == nil, w.PrevHash == nil, w.Hash == nil:
		return Entry{}, errors.New("a member is missing (want seq, time, caller, path, old, new, result, reason, note, prev_hash, hash)")
	}
	e := Entry{Seq: *w.Seq, Caller: *w.Caller, Path: *w.Path, Result: Result(*w.Result),
		Reason: *w.Reason, Note: *w.Note, Kind: w.Kind, Role: w.Role, Remote: w.Remote,
		Component: w.Component, Outcome: w.Outcome, Detail: w.Detail, PrevHash: *w.PrevHash, Hash: *w.Hash}
	t, err := time.Parse(time.RFC3339Nano, *w.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("time: %w", err)
	}
	e.Time = t.UTC()
	if e.Old, err = DecodeValue(w.Old); err != nil {
		return Entry{}, fmt.Errorf("old: %w", err)
	}
	if e.New, err = DecodeValue(w.New); err != nil {
		return Entry{}, fmt.Errorf("new: %w", err)
	}
	switch {
	case e.Result == Allowed, e.Result == Denied, e.Result == Failed:
	case e.Result == "" && e.Kind != "":
		// a non-write action: its outcome is in Outcome
	default:
		return Entry{}, fmt.Errorf("unknown result %q", e.Result)
	}
	if !isHash(e.PrevHash) {
		return Entry{}, errors.New("prev_hash is not 64 lowercase hex digits")
	}
	if !isHash(e.Hash) {
		return Entry{}, errors.New("hash is not 64 lowercase hex digits")
	}
	return e, nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// maxValueDepth bounds array nesting in a decoded value.
const maxValueDepth = 16

// DecodeValue turns a JSON value into a model value the way the trail and
// the HTTP API write them: null → invalid, true/false → bool, an integer
// literal → int (uint above the int64 range), any other number → float,
// a string → string, an array → array. Objects are refused.
func DecodeValue(raw []byte) (model.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return model.Value{}, fmt.Errorf("not a JSON value: %w", err)
	}
	if dec.More() {
		return model.Value{}, errors.New("data after the value")
	}
	return fromJSON(x, 0)
}

func fromJSON(x any, depth int) (model.Value, error) {
	switch t := x.(type) {
	case nil:
		return model.Value{}, nil
	case bool:
		return model.Bool(t), nil
	case string:
		return model.String(t), nil
	case json.Number:
		s := string(t)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return model.Int(i), nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return model.Uint(u), nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return model.Value{}, fmt.Errorf("number %s is out of range", s)
		}
		return model.Float(f), nil
	case []any:
		if depth >= maxValueDepth {
			return model.Value{}, fmt.Errorf("arrays nested deeper than %d", maxValueDepth)
		}
		out := make([]model.Value, len(t))
		for i, e := range t {
			v, err := fromJSON(e, depth+1)
			if err != nil {
				return model.Value{}, err
			}
			out[i] = v
		}
		return model.Array(out), nil
	}
	return model.Value{}, fmt.Errorf("a %T is not a tag value", x)
}
