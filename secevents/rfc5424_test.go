package secevents

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/weir-edge/weir/security"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

// The formatter's output, byte for byte, for the cases the ABNF of RFC
// 5424 makes tricky; every case must also parse with go-syslog's RFC 5424
// parser and give the fields back.
func TestFormat(t *testing.T) {
	f := Formatter{Facility: 4, Hostname: "gw-7", AppName: "weir", ProcID: "4711", Node: "line-7"}
	tests := []struct {
		name string
		f    Formatter
		ev   security.Event
		want string
	}{
		{"login failed", f, security.Event{Time: t0, Kind: security.LoginFailed, Severity: security.SeverityWarning,
			Actor: "api:alice", Remote: "10.0.0.9:51234", Component: "api", Object: "/api/v1/values", Outcome: "failed",
			Detail: "wrong password"},
			`<36>1 2026-03-04T05:06:07.123456Z gw-7 weir 4711 auth.login_failed [weir@32473 kind="auth.login_failed" severity="warning" actor="api:alice" remote="10.0.0.9:51234" component="api" object="/api/v1/values" outcome="failed" node="line-7"] wrong password`},
		{"escaping of quote, backslash and bracket", f, security.Event{Time: t0, Kind: security.WriteDenied, Severity: security.SeverityNotice,
			Object: `a"b\c]d`, Actor: `]"\`},
			`<37>1 2026-03-04T05:06:07.123456Z gw-7 weir 4711 write.denied [weir@32473 kind="write.denied" severity="notice" actor="\]\"\\" object="a\"b\\c\]d" node="line-7"] write.denied`},
		{"critical, facility local7", Formatter{Facility: 23, Hostname: "h", AppName: "a", ProcID: "1"},
			security.Event{Time: t0, Kind: security.AuditProblem, Severity: security.SeverityCritical, Outcome: "failed"},
			`<186>1 2026-03-04T05:06:07.123456Z h a 1 audit.problem [weir@32473 kind="audit.problem" severity="critical" outcome="failed"] audit.problem failed`},
		{"empty header fields are NILVALUE", Formatter{Facility: 10},
			security.Event{Kind: "", Severity: security.SeverityInfo},
			`<86>1 - - - - - [weir@32473 severity="info"]`},
		{"header with a space or non-ASCII is NILVALUE", Formatter{Facility: 4, Hostname: "gw 7", AppName: "wéir", ProcID: "1"},
			security.Event{Time: t0, Kind: "a kind", Severity: security.SeverityError},
			`<35>1 2026-03-04T05:06:07.123456Z - - 1 - [weir@32473 kind="a kind" severity="error"] a kind`},
		{"long header fields are cut to their limits", Formatter{Facility: 4, Hostname: "h", AppName: strings.Repeat("a", 60), ProcID: "1"},
			security.Event{Time: t0, Kind: security.Kind(strings.Repeat("k", 40)), Severity: security.SeverityInfo},
			`<38>1 2026-03-04T05:06:07.123456Z h ` + strings.Repeat("a", 48) + ` 1 ` + strings.Repeat("k", 32) +
				` [weir@32473 kind="` + strings.Repeat("k", 40) + `" severity="info"] ` + strings.Repeat("k", 40)},
		{"non-ASCII message gets a BOM, values stay UTF-8", f, security.Event{Time: t0, Kind: security.AccessDenied,
			Severity: security.SeverityWarning, Actor: "api:jürgen", Detail: "Rolle reicht nicht für /api/v1/write"},
			"<36>1 2026-03-04T05:06:07.123456Z gw-7 weir 4711 auth.access_denied [weir@32473 kind=\"auth.access_denied\" severity=\"warning\" actor=\"api:jürgen\" node=\"line-7\"] \ufeffRolle reicht nicht für /api/v1/write"},
		{"invalid UTF-8 is replaced", f, security.Event{Time: t0, Kind: security.RequestRefused, Severity: security.SeverityNotice,
			Object: "a\xffb", Detail: "x\xfey"},
			"<37>1 2026-03-04T05:06:07.123456Z gw-7 weir 4711 auth.request_refused [weir@32473 kind=\"auth.request_refused\" severity=\"notice\" object=\"a\uFFFDb\" node=\"line-7\"] \ufeffx\uFFFDy"},
		{"unset severity is notice; timestamp in UTC", f, security.Event{Time: t0.In(time.FixedZone("CET", 3600)), Kind: security.NewPeer},
			`<37>1 2026-03-04T05:06:07.123456Z gw-7 weir 4711 net.new_peer [weir@32473 kind="net.new_peer" severity="notice" node="line-7"] net.new_peer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.f.Append(nil, tt.ev))
			if got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
			checkParses(t, got, tt.f, tt.ev)
		})
	}
}

// checkParses parses msg with go-syslog (strict RFC 5424) and compares
// what it reads with what was written.
func checkParses(t *testing.T, msg string, f Formatter, ev security.Event) {
	t.Helper()
	m, err := rfc5424.NewParser().Parse([]byte(msg))
	if err != nil {
		t.Fatalf("go-syslog does not parse %q: %v", msg, err)
	}
	sm := m.(*rfc5424.SyslogMessage)
	sev := ev.Severity
	if sev <= 0 || sev > 7 {
		sev = security.SeverityNotice
	}
	if sm.Version != 1 || sm.Severity == nil || int(*sm.Severity) != int(sev) ||
		sm.Facility == nil || int(*sm.Facility) != f.Facility {
		t.Errorf("version/severity/facility: %+v", sm.Base)
	}
	if ev.Time.IsZero() != (sm.Timestamp == nil) || (sm.Timestamp != nil && !sm.Timestamp.Equal(ev.Time.Truncate(time.Microsecond))) {
		t.Errorf("timestamp %v, want %v", sm.Timestamp, ev.Time)
	}
	if sm.StructuredData == nil {
		t.Fatalf("no structured data in %q", msg)
	}
	sd := (*sm.StructuredData)[SDID]
	want := map[string]string{"kind": string(ev.Kind), "actor": ev.Actor, "remote": ev.Remote,
		"component": ev.Component, "object": ev.Object, "outcome": ev.Outcome, "node": f.Node}
	for k, v := range want {
		v = strings.ToValidUTF8(v, "\uFFFD")
		if sd[k] != v {
			t.Errorf("param %s = %q, want %q", k, sd[k], v)
		}
	}
	if ev.Detail != "" {
		if sm.Message == nil || strings.TrimPrefix(*sm.Message, "\ufeff") != strings.ToValidUTF8(ev.Detail, "\uFFFD") {
			t.Errorf("message %v, want %q", sm.Message, ev.Detail)
		}
	}
}

func TestOctetCounting(t *testing.T) {
	msg := []byte("<36>1 - - - - - - ü")
	got := string(appendOctetCounted(nil, msg))
	if want := "20 <36>1 - - - - - - ü"; got != want {
		t.Fatalf("got %q, want %q (the length counts octets, not characters)", got, want)
	}
}

// Whatever a caller puts into an event, the message parses as RFC 5424
// and carries the (cleaned) fields back.
func FuzzFormat(f *testing.F) {
	f.Add("auth.login_failed", "api:alice", "10.0.0.1:5", "api", "/x", "failed", "wrong", 4, "gw")
	f.Add(`a"b`, `]\"`, "", "\x00\n", "ä]", "", "\xff", 0, "")
	f.Fuzz(func(t *testing.T, kind, actor, remote, component, object, outcome, detail string, sev int, host string) {
		s := &Stream{now: func() time.Time { return t0 }}
		ev := s.clean(security.Event{Time: t0, Kind: security.Kind(kind), Severity: security.Severity(sev),
			Actor: actor, Remote: remote, Component: component, Object: object, Outcome: outcome, Detail: detail})
		fm := Formatter{Facility: 4, Hostname: host, AppName: "weir", ProcID: "1", Node: "n"}
		msg := fm.Append(nil, ev)
		if !utf8.Valid(msg) {
			t.Fatalf("not UTF-8: %q", msg)
		}
		checkParses(t, string(msg), fm, ev)
	})
}
