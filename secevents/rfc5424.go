package secevents

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/weir-edge/weir/security"
)

// SDID is the SD-ID of the structured-data element every message carries.
// 32473 is the private enterprise number RFC 5612 reserves for
// documentation examples: Weir has no number of its own, and a collector
// that must tell Weir's elements apart matches on this one. A deployment
// with its own number can only change it in code.
const SDID = "weir@32473"

// Limits of RFC 5424 §6 on header fields.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
)

// bom marks MSG as UTF-8 (RFC 5424 §6.4); written only when MSG holds a
// byte beyond ASCII, so plain messages stay plain for simple collectors.
const bom = "\xef\xbb\xbf"

// Formatter writes events as RFC 5424 syslog messages:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [weir@32473 kind="…" …] MSG
//
// PRI is facility×8 + the event's severity; TIMESTAMP is RFC 3339 in UTC
// with microseconds (the ABNF allows at most six fractional digits);
// MSGID is the event's kind; the structured data carries the event's
// fields (those that are empty are left out) and MSG its detail. A header
// field that is empty or not printable ASCII is written as "-" (NILVALUE).
// The zero Formatter uses facility kern (0); set Facility.
type Formatter struct {
	Facility int
	Hostname string
	AppName  string
	ProcID   string
	// Node is written as the node parameter of every message.
	Node string
}

// Append appends ev as one message (without any framing) to dst.
func (f *Formatter) Append(dst []byte, ev security.Event) []byte {
	sev := int(ev.Severity)
	if sev <= 0 || sev > 7 { // unset: see Stream.clean
		sev = int(security.SeverityNotice)
	}
	fac := f.Facility
	if fac < 0 || fac > 23 {
		fac = 1 // user, the default of RFC 5424's examples
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(fac*8+sev), 10)
	dst = append(dst, ">1 "...)
	if ev.Time.IsZero() {
		dst = append(dst, '-')
	} else {
		dst = ev.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	}
	dst = append(dst, ' ')
	dst = appendHeader(dst, f.Hostname, maxHostname)
	dst = append(dst, ' ')
	dst = appendHeader(dst, f.AppName, maxAppName)
	dst = append(dst, ' ')
	dst = appendHeader(dst, f.ProcID, maxProcID)
	dst = append(dst, ' ')
	dst = appendHeader(dst, string(ev.Kind), maxMsgID)
	dst = append(dst, " ["+SDID...)
	for _, p := range [...]struct{ name, value string }{
		{"kind", string(ev.Kind)}, {"severity", SeverityName(security.Severity(sev))},
		{"actor", ev.Actor}, {"remote", ev.Remote}, {"component", ev.Component},
		{"object", ev.Object}, {"outcome", ev.Outcome}, {"node", f.Node},
	} {
		if p.value == "" {
			continue
		}
		dst = append(dst, ' ')
		dst = append(dst, p.name...)
		dst = append(dst, `="`...)
		dst = appendParamValue(dst, p.value)
		dst = append(dst, '"')
	}
	dst = append(dst, ']')
	msg := ev.Detail
	if msg == "" {
		msg = strings.TrimSpace(string(ev.Kind) + " " + ev.Outcome)
	}
	if msg != "" {
		dst = append(dst, ' ')
		msg = strings.ToValidUTF8(msg, "\uFFFD")
		if !isASCII(msg) {
			dst = append(dst, bom...)
		}
		dst = append(dst, msg...)
	}
	return dst
}

// appendHeader writes a header field: 1..max printable US-ASCII
// characters without spaces, else NILVALUE. A longer value is cut, a
// value with other bytes replaced, so one odd kind or host name never
// makes the whole message unparseable.
func appendHeader(dst []byte, v string, max int) []byte {
	if len(v) > max {
		v = v[:max]
	}
	if v == "" {
		return append(dst, '-')
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 33 || v[i] > 126 {
			return append(dst, '-')
		}
	}
	return append(dst, v...)
}

// appendParamValue writes v with '"', '\' and ']' escaped by a backslash
// (RFC 5424 §6.3.3); invalid UTF-8 becomes U+FFFD.
func appendParamValue(dst []byte, v string) []byte {
	for len(v) > 0 {
		r, n := utf8.DecodeRuneInString(v)
		switch {
		case r == utf8.RuneError && n <= 1:
			dst = append(dst, "\uFFFD"...)
		case r == '"' || r == '\\' || r == ']':
			dst = append(dst, '\\', byte(r))
		default:
			dst = append(dst, v[:n]...)
		}
		v = v[n:]
	}
	return dst
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendOctetCounted frames msg for a stream (RFC 5425 §4.3, RFC 6587
// §3.4.1): its length in decimal, a space, then the message.
func appendOctetCounted(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}
