package alarms

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestTimesAreUTC: an alarm raised with a local time (a host not on UTC)
// shows it in UTC in its JSON and its event, as every API time is.
func TestTimesAreUTC(t *testing.T) {
	m, _ := newManager(t, "")
	local := time.Date(2026, 3, 4, 6, 6, 7, 123e6, time.FixedZone("CET", 3600))
	if _, err := m.Raise("hot", local); err != nil {
		t.Fatal(err)
	}
	a, _ := m.Get("hot")
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"raised_at":"2026-03-04T05:06:07.123Z"`) {
		t.Errorf("alarm JSON %s, want raised_at in UTC", b)
	}
	for _, e := range events(t, m) {
		if e.Time.Location() != time.UTC {
			t.Errorf("event time %s not UTC", e.Time)
		}
	}
}
