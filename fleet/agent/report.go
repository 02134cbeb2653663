package agent

import (
	"encoding/hex"
	"sort"
	"time"

	"github.com/weir-edge/weir/gateway"
)

// ReportSchema is the version of Report's JSON; the hub refuses what it
// does not know.
const ReportSchema = 1

// Report is what a site publishes on weir.report.<site> (JSON): its
// versions, whether it drifted from the hub, and its health. The hub keeps
// the newest per site (stream WEIR_REPORTS). Its size is bounded: at most
// maxComponents sources and sinks are listed.
type Report struct {
	Schema int       `json:"schema"`
	Site   string    `json:"site"`
	Time   time.Time `json:"time"`
	// Seq grows by one per report the agent makes (in this process), so
	// the hub can order the reports a site held while offline.
	Seq uint64 `json:"seq"`
	// Desired is the newest validly signed version the site has been
	// given; Applied the one it holds as known-good (0: none yet);
	// Effective what runs: the hash of the running configuration text,
	// with Applied's version when that is what runs.
	Desired   Version `json:"desired"`
	Applied   Version `json:"applied"`
	Effective Version `json:"effective"`
	// Drift: the running configuration is not the applied version (a
	// break-glass change on the site); Effective.Hash says what runs.
	Drift bool `json:"drift"`
	// State is one of the State* values.
	State string `json:"state"`
	// Rollback is the last version the site rolled back, and why.
	Rollback *Event `json:"rollback,omitempty"`
	// Refused is the last bundle or key rotation the site refused
	// (bad signature, older version, wrong site…), and why.
	Refused *Event `json:"refused,omitempty"`
	Health  Health `json:"health"`
	// Offline is how many reports were made while the hub was out of
	// reach (the newest of them are sent on return).
	Offline int `json:"offline,omitempty"`
}

// Version names a configuration: version number and SHA-256 hex.
type Version struct {
	Version uint64 `json:"version"`
	Hash    string `json:"hash,omitempty"`
}

// Event is a version the site did not keep, and why, in words.
type Event struct {
	Version uint64    `json:"version"`
	Hash    string    `json:"hash,omitempty"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// States of a site, as reported.
const (
	// StateInSync: the applied version runs and is the desired one.
	StateInSync = "in_sync"
	// StateApplying: a new version is applied and in its dwell.
	StateApplying = "applying"
	// StateRolledBack: the desired version failed and was rolled back;
	// the site runs its known-good one.
	StateRolledBack = "rolled_back"
	// StateDrift: a local change runs instead of the applied version.
	StateDrift = "drift"
	// StateNoVersion: the site has no version from the hub yet.
	StateNoVersion = "no_version"
)

// Health is the site's health, from the gateway's status.
type Health struct {
	Ready    bool        `json:"ready"`
	NotReady []string    `json:"not_ready,omitempty"`
	Sources  []Component `json:"sources,omitempty"`
	Sinks    []Component `json:"sinks,omitempty"`
	// HighAlarms counts active alarms of priority high or critical.
	HighAlarms int `json:"high_alarms"`
	// WriteDenials counts writes the write gate refused since start.
	WriteDenials     uint64    `json:"write_denials"`
	AuditCheckpoints uint64    `json:"audit_checkpoints"`
	AuditError       string    `json:"audit_error,omitempty"`
	CertNotAfter     time.Time `json:"cert_not_after,omitzero"`
}

// Component is one source or sink; a sink carries its buffer.
type Component struct {
	Name      string `json:"name"`
	Up        bool   `json:"up"`
	State     string `json:"state,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// WriteErrors counts a sink's failed writes.
	WriteErrors uint64 `json:"write_errors,omitempty"`
	// BufferDepth is the samples a sink's buffer holds; BufferAgeSeconds
	// the age of the oldest of them.
	BufferDepth      int     `json:"buffer_depth,omitempty"`
	BufferAgeSeconds float64 `json:"buffer_age_seconds,omitempty"`
}

// maxComponents bounds the sources and sinks listed in one report.
const maxComponents = 200

// maxErrorLen bounds one error text in a report.
const maxErrorLen = 300

// healthOf turns a gateway snapshot into the report's Health.
func healthOf(st gateway.FleetState, now time.Time) Health {
	h := Health{Ready: st.Status.Ready, NotReady: clip(st.Status.NotReady, 20), HighAlarms: st.HighAlarms,
		WriteDenials: st.WriteDenials, AuditCheckpoints: st.AuditCheckpoints, AuditError: short(st.AuditErr),
		CertNotAfter: st.CertNotAfter}
	for _, c := range st.Status.Components {
		one := Component{Name: c.Name, Up: c.Up, State: c.State, LastError: short(c.LastError)}
		switch c.Kind {
		case "source":
			if len(h.Sources) < maxComponents {
				h.Sources = append(h.Sources, one)
			}
		case "sink":
			one.WriteErrors = c.Counters["write_errors"]
			if c.Buffer != nil {
				one.BufferDepth = c.Buffer.Depth
				if c.Buffer.OldestEdgeTime > 0 {
					one.BufferAgeSeconds = max(0, now.Sub(time.Unix(0, c.Buffer.OldestEdgeTime)).Seconds())
				}
			}
			if len(h.Sinks) < maxComponents {
				h.Sinks = append(h.Sinks, one)
			}
		}
	}
	sort.Slice(h.Sources, func(i, j int) bool { return h.Sources[i].Name < h.Sources[j].Name })
	sort.Slice(h.Sinks, func(i, j int) bool { return h.Sinks[i].Name < h.Sinks[j].Name })
	return h
}

func clip(s []string, n int) []string {
	if len(s) > n {
		s = s[:n]
	}
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = short(v)
	}
	return out
}

func short(s string) string {
	if len(s) > maxErrorLen {
		return s[:maxErrorLen] + "…"
	}
	return s
}

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }
