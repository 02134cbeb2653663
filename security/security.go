package security

import (
	"context"
	"fmt"
	"time"
)

// Role is what a caller may do. Roles are ordered: each includes every
// lower one, so an operator can also read and an admin can do everything.
//
//	viewer    read values, status, alarms, the audit trail
//	operator  + write within a write policy, acknowledge and shelve alarms
//	engineer  + configuration (validate, apply, roll back)
//	admin     + users and API tokens
type Role string

// The roles, lowest first.
const (
	Viewer   Role = "viewer"
	Operator Role = "operator"
	Engineer Role = "engineer"
	Admin    Role = "admin"
)

// Roles lists every role, lowest first, for messages and completion.
var Roles = []Role{Viewer, Operator, Engineer, Admin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Includes reports whether a caller holding r may do what need requires.
// An unknown role includes nothing and is included by nothing.
func (r Role) Includes(need Role) bool {
	return r.rank() > 0 && need.rank() > 0 && r.rank() >= need.rank()
}

// ParseRole accepts a role name as written in a configuration file.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want viewer, operator, engineer or admin)", s)
}

// Severity follows syslog (RFC 5424 §6.2.1): lower is more severe.
type Severity int

// The severities security events use.
const (
	SeverityCritical Severity = 2
	SeverityError    Severity = 3
	SeverityWarning  Severity = 4
	SeverityNotice   Severity = 5
	SeverityInfo     Severity = 6
)

// Kind names what happened, as dotted words a SOC can filter on. New kinds
// may be added; a consumer must pass unknown kinds through.
type Kind string

// The kinds Weir reports.
const (
	LoginOK           Kind = "auth.login_ok"        // credentials accepted (first use of a session or token is enough)
	LoginFailed       Kind = "auth.login_failed"    // wrong, unknown, expired or revoked credentials
	AccessDenied      Kind = "auth.access_denied"   // authenticated, but the role does not allow it
	RequestRefused    Kind = "auth.request_refused" // refused before authentication: Host/Origin, size, rate or connection limit, missing MQTT proof
	Logout            Kind = "auth.logout"          // a web session ended: closed by its user, or expired
	TokenCreated      Kind = "auth.token_created"
	TokenRevoked      Kind = "auth.token_revoked"
	WriteAllowed      Kind = "write.allowed"
	WriteDenied       Kind = "write.denied"
	AlarmCommand      Kind = "alarm.command" // ack, shelve, unshelve
	ConfigApplied     Kind = "config.applied"
	CertRejected      Kind = "tls.cert_rejected"  // a peer's certificate failed verification (either direction)
	EgressDenied      Kind = "flow.egress_denied" // a route selected a tag above its sink's class: held back (once per sink and tag)
	NewPeer           Kind = "net.new_peer"       // first contact from an address not seen before
	AuditCheckpoint   Kind = "audit.checkpoint"   // a signed checkpoint of the audit trail's head
	AuditProblem      Kind = "audit.problem"      // the trail cannot be written, or rotation would drop uncovered entries
	InsecureTransport Kind = "config.insecure"    // a component runs with an explicitly allowed insecure setting
)

// Event is one security-relevant thing that happened. Fields are plain
// text; free text (Detail) is capped by the recorder, never trusted.
// No field ever holds a secret: not a password, token, key or its hash.
type Event struct {
	Time     time.Time
	Kind     Kind
	Severity Severity
	// Actor is who acted, as the write gate names callers:
	// "api:alice", "mqtt:bob", "cli", "" when unknown.
	Actor string
	// Remote is the peer's address (host:port) when there is one.
	Remote string
	// Component is the part of Weir that saw it: "api", "write_commands",
	// "writegate", "audit", a source or sink name.
	Component string
	// Object is what was acted on: a tag path, an alarm, a token id, a
	// request path.
	Object string
	// Outcome is "ok", "denied", "failed" or "refused".
	Outcome string
	// Detail says why, in the user's words.
	Detail string
}

// Recorder takes security events. Record must not block for long: an
// implementation queues (bounded) and counts what it had to drop. Safe
// for concurrent use.
type Recorder interface {
	Record(ctx context.Context, ev Event)
}

// Discard is a Recorder that drops everything, for tests and tools.
var Discard Recorder = discard{}

type discard struct{}

func (discard) Record(context.Context, Event) {}

// RecorderFunc adapts a function to a Recorder.
type RecorderFunc func(ctx context.Context, ev Event)

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, ev Event) { f(ctx, ev) }

// Fanout records every event on each of rs in turn.
type Fanout []Recorder

// Record passes ev to every recorder.
func (f Fanout) Record(ctx context.Context, ev Event) {
	for _, r := range f {
		r.Record(ctx, ev)
	}
}
