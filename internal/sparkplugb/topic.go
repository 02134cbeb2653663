package sparkplugb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MessageType is the message_type level of a Sparkplug topic.
type MessageType string

// The Sparkplug 3.0 message types.
const (
	NBIRTH MessageType = "NBIRTH"
	NDEATH MessageType = "NDEATH"
	DBIRTH MessageType = "DBIRTH"
	DDEATH MessageType = "DDEATH"
	NDATA  MessageType = "NDATA"
	DDATA  MessageType = "DDATA"
	NCMD   MessageType = "NCMD"
	DCMD   MessageType = "DCMD"
	STATE  MessageType = "STATE"
)

// IsDevice reports whether messages of type t name a device (DBIRTH,
// DDEATH, DDATA, DCMD).
func (t MessageType) IsDevice() bool {
	return t == DBIRTH || t == DDEATH || t == DDATA || t == DCMD
}

// Valid reports whether t is one of the nine message types.
func (t MessageType) Valid() bool {
	switch t {
	case NBIRTH, NDEATH, DBIRTH, DDEATH, NDATA, DDATA, NCMD, DCMD, STATE:
		return true
	}
	return false
}

// Topic is a parsed Sparkplug topic:
//
//	spBv1.0/<Group>/<Type>/<EdgeNode>[/<Device>]
//	spBv1.0/STATE/<HostID>
//	STATE/<HostID>                       (pre-3.0 hosts; Namespace "")
type Topic struct {
	Namespace string // "spBv1.0"; "" only for the legacy STATE topic
	Group     string
	Type      MessageType
	EdgeNode  string
	Device    string // DBIRTH, DDEATH, DDATA, DCMD only
	HostID    string // STATE only
}

// ErrTopic is wrapped by every ParseTopic error.
var ErrTopic = errors.New("sparkplugb: not a Sparkplug B topic")

// ParseTopic parses a topic name and checks every id with ValidateID.
func ParseTopic(s string) (Topic, error) {
	parts := strings.Split(s, "/")
	if len(parts) == 2 && parts[0] == string(STATE) {
		if err := ValidateID(parts[1]); err != nil {
			return Topic{}, fmt.Errorf("%w: %q: host id: %w", ErrTopic, s, err)
		}
		return Topic{Type: STATE, HostID: parts[1]}, nil
	}
	if len(parts) < 3 || parts[0] != Namespace {
		return Topic{}, fmt.Errorf("%w: %q", ErrTopic, s)
	}
	if parts[1] == string(STATE) {
		if len(parts) != 3 {
			return Topic{}, fmt.Errorf("%w: %q: STATE takes exactly one host id", ErrTopic, s)
		}
		if err := ValidateID(parts[2]); err != nil {
			return Topic{}, fmt.Errorf("%w: %q: host id: %w", ErrTopic, s, err)
		}
		return Topic{Namespace: Namespace, Type: STATE, HostID: parts[2]}, nil
	}
	t := Topic{Namespace: Namespace, Group: parts[1], Type: MessageType(parts[2])}
	if !t.Type.Valid() || t.Type == STATE {
		return Topic{}, fmt.Errorf("%w: %q: unknown message type %q", ErrTopic, s, parts[2])
	}
	want := 4
	if t.Type.IsDevice() {
		want = 5
	}
	if len(parts) != want {
		return Topic{}, fmt.Errorf("%w: %q: %s takes %d levels, got %d", ErrTopic, s, t.Type, want, len(parts))
	}
	t.EdgeNode = parts[3]
	if want == 5 {
		t.Device = parts[4]
	}
	if err := ValidateID(t.Group); err != nil {
		return Topic{}, fmt.Errorf("%w: %q: group id: %w", ErrTopic, s, err)
	}
	if err := ValidateID(t.EdgeNode); err != nil {
		return Topic{}, fmt.Errorf("%w: %q: edge node id: %w", ErrTopic, s, err)
	}
	if want == 5 {
		if err := ValidateID(t.Device); err != nil {
			return Topic{}, fmt.Errorf("%w: %q: device id: %w", ErrTopic, s, err)
		}
	}
	return t, nil
}

// String formats t as a topic name. An empty Namespace is written as
// "spBv1.0" except for the legacy STATE form.
func (t Topic) String() string {
	ns := t.Namespace
	if t.Type == STATE {
		if ns == "" {
			return "STATE/" + t.HostID
		}
		return ns + "/STATE/" + t.HostID
	}
	if ns == "" {
		ns = Namespace
	}
	s := ns + "/" + t.Group + "/" + string(t.Type) + "/" + t.EdgeNode
	if t.Device != "" {
		s += "/" + t.Device
	}
	return s
}

// ValidateID checks a group, edge node, device or host id against the
// spec (chapter 4): a non-empty valid UTF-8 string without '+', '/' or '#'
// (the MQTT separators and wildcards). NUL is refused too, because MQTT
// forbids U+0000 in topic names.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if !utf8.ValidString(id) {
		return errors.New("not valid UTF-8")
	}
	if i := strings.IndexAny(id, "+/#\x00"); i >= 0 {
		return fmt.Errorf("%q contains the reserved character %q", id, id[i])
	}
	return nil
}

// DiscouragedMetricChars are the characters the spec (chapter 6, metric
// name) recommends against in metric names because some host applications
// cannot represent them.
const DiscouragedMetricChars = ".,\\@#$%^&*()[]{}|!~:;'\"<>?`"

// CheckMetricName reports why name is not a good Sparkplug metric name:
// empty, invalid UTF-8, or containing a discouraged character. '/' is
// fine: it separates folders. A non-nil result is advice, not a protocol
// violation.
func CheckMetricName(name string) error {
	if name == "" {
		return errors.New("empty metric name")
	}
	if !utf8.ValidString(name) {
		return errors.New("metric name is not valid UTF-8")
	}
	if i := strings.IndexAny(name, DiscouragedMetricChars); i >= 0 {
		return fmt.Errorf("metric name %q contains %q, which the spec discourages", name, name[i])
	}
	return nil
}

// State is the payload of a host application's STATE message.
type State struct {
	Online bool
	// Timestamp is UTC ms; 0 for the legacy string form, which has none.
	Timestamp uint64
	// Legacy is true when the payload was the pre-3.0 "ONLINE"/"OFFLINE".
	Legacy bool
}

type stateJSON struct {
	Online    *bool   `json:"online"`
	Timestamp *uint64 `json:"timestamp"`
}

// ParseState parses a STATE payload: the 3.0 JSON object
// {"online":bool,"timestamp":ms} (both members required), or the legacy
// plain string ONLINE / OFFLINE.
func ParseState(b []byte) (State, error) {
	t := bytes.TrimSpace(b)
	switch string(t) {
	case "ONLINE":
		return State{Online: true, Legacy: true}, nil
	case "OFFLINE":
		return State{Legacy: true}, nil
	}
	var w stateJSON
	if err := json.Unmarshal(t, &w); err != nil {
		return State{}, fmt.Errorf("sparkplugb: STATE payload: %w", err)
	}
	if w.Online == nil || w.Timestamp == nil {
		return State{}, errors.New(`sparkplugb: STATE payload: "online" and "timestamp" are required`)
	}
	return State{Online: *w.Online, Timestamp: *w.Timestamp}, nil
}

// AppendJSON appends the 3.0 JSON form of s.
func (s State) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"online":`...)
	dst = strconv.AppendBool(dst, s.Online)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendUint(dst, s.Timestamp, 10)
	return append(dst, '}')
}

// LegacyPayload returns the pre-3.0 payload ONLINE or OFFLINE.
func (s State) LegacyPayload() []byte {
	if s.Online {
		return []byte("ONLINE")
	}
	return []byte("OFFLINE")
}
