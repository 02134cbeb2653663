package alarms

import (
	"encoding/json"
	"testing"
	"time"
)

// Retire: a normal alarm disappears; an acked one is cleared with the
// removed reason and disappears; an unacknowledged one is cleared and
// stays until acknowledged; a retired alarm can be taken over by a rule.
func TestRetire(t *testing.T) {
	m, err := New(Config{}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, n := range []string{"calm", "seen", "loud", "back"} {
		if err := m.Define(Def{Name: n, Priority: High, Rule: "r_" + n}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"seen", "loud", "back"} {
		if _, err := m.Raise(n, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Acknowledge("seen", "op", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Clear("back", now); err != nil { // rtn_unack
		t.Fatal(err)
	}
	m.Drain(nil)
	m.Retire([]string{"calm", "seen", "loud", "back", "unknown"}, now)
	var names []string
	for _, a := range m.List() {
		names = append(names, a.Name+"="+string(a.State))
	}
	if got := join(names); got != "back=rtn_unack,loud=rtn_unack" {
		t.Fatalf("after retire: %s", got)
	}
	evs := m.Drain(nil)
	if len(evs) != 2 {
		t.Fatalf("%d events, want the clears of seen and loud", len(evs))
	}
	for _, s := range evs {
		var ev Event
		if err := json.Unmarshal([]byte(s.Value.AsString()), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Transition != Clear || ev.Comment != RetiredReason || ev.User != "system" {
			t.Fatalf("event %+v", ev)
		}
	}
	if len(m.RuleAlarms()) != 0 {
		t.Fatalf("rule alarms %v, want none (retired ones are not listed)", m.RuleAlarms())
	}
	if _, err := m.Acknowledge("loud", "op", "ok"); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get("loud"); ok {
		t.Fatal("a retired alarm stays after its acknowledgement")
	}
	if err := m.Define(Def{Name: "back", Priority: Low, Rule: "other"}); err != nil {
		t.Fatalf("take over a retired alarm: %v", err)
	}
	if a, _ := m.Get("back"); a.State != RTNUnack || a.Rule != "other" {
		t.Fatalf("taken over: %+v", a)
	}
	if _, err := m.Acknowledge("back", "op", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get("back"); !ok {
		t.Fatal("a re-defined alarm vanished at its acknowledgement")
	}
}

// SetConfig changes the prefix and shelve limit of a running manager.
func TestSetConfig(t *testing.T) {
	m, err := New(Config{}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Define(Def{Name: "a", Priority: Low}); err != nil {
		t.Fatal(err)
	}
	if err := m.SetConfig(Config{Prefix: "site/x", MaxShelve: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ShelveFor("a", "op", "", time.Hour); err == nil {
		t.Fatal("shelve beyond the new max_shelve accepted")
	}
	if _, err := m.ShelveFor("a", "op", "", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if evs := m.Drain(nil); len(evs) != 1 || evs[0].Path != "site/x/_alarms/a" {
		t.Fatalf("events %+v", evs)
	}
	if err := m.SetConfig(Config{MaxShelve: -1}); err == nil {
		t.Fatal("an invalid block accepted")
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
