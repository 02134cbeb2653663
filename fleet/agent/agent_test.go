package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A new version goes through the store and the gateway seam and is
// reported applied; a later one replaces it, the versions between never
// needed.
func TestAppliesNewestVersion(t *testing.T) {
	h := startHub(t)
	s := startSite(t, h, "s1", "", nil)
	h.waitReport("s1", "no version yet", func(r Report) bool { return r.State == StateNoVersion })
	h.setDesired(h.issue("s1", 1, "v: 1\n"), true)
	r := h.waitReport("s1", "version 1 in sync", func(r Report) bool { return r.Applied.Version == 1 && r.State == StateInSync })
	if r.Effective.Version != 1 || r.Effective.Hash != hashOf("v: 1\n") || r.Drift {
		t.Fatalf("effective = %+v, drift %v; want version 1, hash of its text", r.Effective, r.Drift)
	}
	h.setDesired(h.issue("s1", 7, "v: 7\n"), true)
	h.waitReport("s1", "version 7 in sync", func(r Report) bool { return r.Applied.Version == 7 && r.State == StateInSync })
	if got := s.store.Current().Version; got != 7 {
		t.Fatalf("known-good version = %d, want 7", got)
	}
	actors, _ := s.target.history()
	if strings.Join(actors, ",") != "fleet:v1,fleet:v7" {
		t.Fatalf("applies = %v, want fleet:v1,fleet:v7", actors)
	}
}

// Bundles the site must refuse: a bad signature, an older version, one
// for another site. Each is reported with its reason; nothing changes.
func TestRefusesAndReports(t *testing.T) {
	h := startHub(t)
	s := startSite(t, h, "s1", "", nil)
	h.setDesired(h.issue("s1", 5, "v: 5\n"), true)
	h.waitReport("s1", "version 5 in sync", func(r Report) bool { return r.Applied.Version == 5 && r.State == StateInSync })
	tampered := h.issue("s1", 6, "v: 6\n").Encode()
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"bad signature", "bad signature", tampered},
		{"older version", "version not newer", h.issue("s1", 4, "v: 4\n").Encode()},
		{"replayed version", "version not newer", h.issue("s1", 5, "v: 5 again\n").Encode()},
		{"another site", "bundle for another site", h.issue("s2", 9, "v: 9\n").Encode()},
		{"not a bundle", "malformed", []byte("{\"version\": 99}")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.send("s1", tc.data)
			r := h.waitReport("s1", "refusal: "+tc.want, func(r Report) bool {
				return r.Refused != nil && strings.Contains(r.Refused.Reason, tc.want)
			})
			if r.Applied.Version != 5 || r.Effective.Version != 5 || r.Drift {
				t.Fatalf("after a refused bundle: applied %+v effective %+v drift %v; want version 5 untouched", r.Applied, r.Effective, r.Drift)
			}
		})
	}
	if actors, _ := s.target.history(); len(actors) != 1 {
		t.Fatalf("gateway applies = %v, want only fleet:v5", actors)
	}
	// Five refusals in a row, each a change: still at most one report a
	// second (the times are the agent's clock when it made them).
	stored := h.storedReports("s1")
	for i := 1; i < len(stored); i++ {
		if gap := stored[i].Time.Sub(stored[i-1].Time); gap < 900*time.Millisecond {
			t.Fatalf("reports %d and %d only %s apart; the bound is one a second", stored[i-1].Seq, stored[i].Seq, gap)
		}
	}
}

// A version that does not validate, or leaves the site unhealthy through
// the dwell, is rolled back locally: the site runs what ran before, the
// known-good bundle stays, the report says why, and the same version is
// not tried again at a reconnect.
func TestRollsBackWithReason(t *testing.T) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"invalid", "v: 2\ninvalid: yes\n", "invalid"},
		{"sink down after the dwell", "v: 2\nsink: down\n", `sink "uns" is not connected after the 50ms dwell: dial tcp 127.0.0.1:1: connection refused`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHub(t)
			s := startSite(t, h, "s1", "", nil)
			h.setDesired(h.issue("s1", 1, "v: 1\n"), true)
			h.waitReport("s1", "version 1 in sync", func(r Report) bool { return r.Applied.Version == 1 && r.State == StateInSync })
			h.setDesired(h.issue("s1", 2, tc.config), true)
			r := h.waitReport("s1", "rollback of version 2", func(r Report) bool { return r.Rollback != nil && r.State == StateRolledBack })
			if r.Rollback.Version != 2 || !strings.Contains(r.Rollback.Reason, tc.want) {
				t.Fatalf("rollback = %+v, want version 2 and reason containing %q", r.Rollback, tc.want)
			}
			if r.Desired.Version != 2 || r.Applied.Version != 1 || r.Effective.Version != 1 || r.Drift {
				t.Fatalf("desired %+v applied %+v effective %+v drift %v; want desired 2, applied and effective 1", r.Desired, r.Applied, r.Effective, r.Drift)
			}
			if string(s.target.Running()) != "v: 1\n" || s.store.Current().Version != 1 {
				t.Fatalf("running %q, known-good %d; want version 1's text and bundle", s.target.Running(), s.store.Current().Version)
			}
			// Sent again (a reconnect): not applied again.
			h.send("s1", h.issue("s1", 2, tc.config).Encode())
			h.setDesired(h.issue("s1", 3, "v: 3\n"), true)
			h.waitReport("s1", "version 3 in sync", func(r Report) bool { return r.Applied.Version == 3 && r.State == StateInSync })
		})
	}
}

// A break-glass change on the site (an admin applies a local file) makes
// the effective configuration differ from the applied version: reported
// as drift with the effective hash, until the hub sends a new version.
func TestBreakGlassIsDrift(t *testing.T) {
	h := startHub(t)
	s := startSite(t, h, "s1", "", nil)
	h.setDesired(h.issue("s1", 1, "v: 1\n"), true)
	h.waitReport("s1", "version 1 in sync", func(r Report) bool { return r.Applied.Version == 1 && r.State == StateInSync })
	local := "v: 1\nemergency: yes\n"
	if err := s.target.Apply(t.Context(), []byte(local), "api:admin"); err != nil {
		t.Fatal(err)
	}
	r := h.waitReport("s1", "drift", func(r Report) bool { return r.Drift })
	if r.State != StateDrift || r.Effective.Hash != hashOf(local) || r.Effective.Version != 0 || r.Applied.Version != 1 {
		t.Fatalf("drift report: state %s effective %+v applied %+v; want drift, the local text's hash, applied 1", r.State, r.Effective, r.Applied)
	}
	// The hub overwrites with a new version.
	h.setDesired(h.issue("s1", 2, "v: 2\n"), true)
	h.waitReport("s1", "version 2 in sync", func(r Report) bool { return r.Applied.Version == 2 && !r.Drift && r.State == StateInSync })
}
