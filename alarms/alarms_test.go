package alarms

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)

func decodeStrict(t *testing.T, doc string) Config {
	t.Helper()
	return conftest.Decode[Config](t, doc)
}

func TestSampleConfig(t *testing.T) {
	c := decodeStrict(t, SampleConfig)
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if got := c.StateFilePath("/var/lib/weir"); got != "/var/lib/weir/alarms.json" {
		t.Fatalf("state file %q", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"empty is fine", `{}`, ""},
		{"bad prefix", `prefix: "a/#"`, "prefix: "},
		{"negative shelve", `max_shelve: -1s`, "max_shelve: must not be negative"},
		{"commands need url and client id", `commands: {}`, "commands.url: is required"},
		{"commands scheme", `commands: {url: "http://x:1", client_id: c}`, `commands.url: scheme "http"`},
		{"commands topic", `commands: {url: "tcp://x:1", client_id: c, topic: "a/+"}`, "commands.topic: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodeStrict(t, tt.doc)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"overheat", "line-1.filler_temp", "A9"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "a b", "+", "#", "..", strings.Repeat("x", 129), "é"} {
		if ValidName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func newManager(t *testing.T, file string) (*Manager, *time.Time) {
	t.Helper()
	m, err := New(Config{Prefix: "acme/plant1", MaxShelve: 8 * time.Hour}, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	m.SetClock(func() time.Time { return now })
	if err := m.Define(Def{Name: "hot", Priority: High, Message: "too hot", Rule: "overheat"}); err != nil {
		t.Fatal(err)
	}
	return m, &now
}

func events(t *testing.T, m *Manager) []Event {
	t.Helper()
	var out []Event
	for _, s := range m.Drain(nil) {
		if s.Path != "acme/plant1/_alarms/hot" || s.Value.Kind() != model.KindString {
			t.Fatalf("event sample %+v", s)
		}
		var e Event
		if err := json.Unmarshal([]byte(s.Value.AsString()), &e); err != nil {
			t.Fatal(err)
		}
		if s.SourceTime != e.Time.UnixNano() {
			t.Fatalf("sample time %d, event time %s", s.SourceTime, e.Time)
		}
		out = append(out, e)
	}
	return out
}

// TestStateMachine runs every transition from every state, shelved and
// not: the state after it, the error, and the event it emits.
func TestStateMachine(t *testing.T) {
	setups := map[State][]func(m *Manager) error{
		Normal: nil,
		Unack:  {func(m *Manager) error { _, err := m.Raise("hot", t0); return err }},
		Acked: {func(m *Manager) error { _, err := m.Raise("hot", t0); return err },
			func(m *Manager) error { _, err := m.Acknowledge("hot", "api:bob", ""); return err }},
		RTNUnack: {func(m *Manager) error { _, err := m.Raise("hot", t0); return err },
			func(m *Manager) error { _, err := m.Clear("hot", t0); return err }},
	}
	later := t0.Add(time.Minute)
	ops := map[Transition]func(m *Manager) error{
		Raise: func(m *Manager) error { _, err := m.Raise("hot", later); return err },
		Clear: func(m *Manager) error { _, err := m.Clear("hot", later); return err },
		Ack:   func(m *Manager) error { _, err := m.Acknowledge("hot", "api:alice", "seen"); return err },
		Shelve: func(m *Manager) error {
			_, err := m.ShelveFor("hot", "api:alice", "maintenance", time.Hour)
			return err
		},
		Unshelve: func(m *Manager) error { _, err := m.Unshelve("hot", "api:alice", "done"); return err },
	}
	tests := []struct {
		from    State
		shelved bool
		op      Transition
		to      State
		err     error
		event   bool // an event is emitted
		annunce bool
	}{
		{Normal, false, Raise, Unack, nil, true, true},
		{Normal, false, Clear, Normal, nil, false, false},
		{Normal, false, Ack, Normal, ErrNothingToAck, false, false},
		{Normal, false, Shelve, Normal, nil, true, false},
		{Normal, false, Unshelve, Normal, ErrNotShelved, false, false},
		{Unack, false, Raise, Unack, nil, false, false},
		{Unack, false, Clear, RTNUnack, nil, true, false},
		{Unack, false, Ack, Acked, nil, true, false},
		{Unack, false, Shelve, Unack, nil, true, false},
		{Acked, false, Raise, Acked, nil, false, false},
		{Acked, false, Clear, Normal, nil, true, false},
		{Acked, false, Ack, Acked, ErrNothingToAck, false, false},
		{RTNUnack, false, Raise, Unack, nil, true, true},
		{RTNUnack, false, Clear, RTNUnack, nil, false, false},
		{RTNUnack, false, Ack, Normal, nil, true, false}, // ack of a cleared alarm → normal
		// Shelved: state still tracked, nothing annunciates.
		{Normal, true, Raise, Unack, nil, true, false},
		{Unack, true, Clear, RTNUnack, nil, true, false}, // clear while shelved
		{Unack, true, Ack, Acked, nil, true, false},
		{Unack, true, Shelve, Unack, nil, true, false}, // re-shelve moves the end time
		{Unack, true, Unshelve, Unack, nil, true, true},
		{RTNUnack, true, Unshelve, RTNUnack, nil, true, true},
		{Acked, true, Unshelve, Acked, nil, true, false},
		{Normal, true, Unshelve, Normal, nil, true, false},
	}
	for _, tt := range tests {
		name := string(tt.from) + "/" + string(tt.op)
		if tt.shelved {
			name += "/shelved"
		}
		t.Run(name, func(t *testing.T) {
			m, now := newManager(t, "")
			for _, f := range setups[tt.from] {
				if err := f(m); err != nil {
					t.Fatal(err)
				}
			}
			if tt.shelved {
				if _, err := m.ShelveFor("hot", "api:carol", "noisy", 30*time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			m.Drain(nil)
			*now = later
			err := ops[tt.op](m)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			a, _ := m.Get("hot")
			wantShelved := (tt.shelved && tt.op != Unshelve) || (tt.op == Shelve && tt.err == nil)
			if a.State != tt.to || a.Shelved != wantShelved {
				t.Fatalf("alarm %+v, want state %s shelved %v", a, tt.to, wantShelved)
			}
			evs := events(t, m)
			if !tt.event {
				if len(evs) != 0 {
					t.Fatalf("events %+v", evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("events %+v", evs)
			}
			e := evs[0]
			if e.Transition != tt.op || e.From != tt.from || e.To != tt.to || e.Shelved != wantShelved ||
				e.Annunciate != tt.annunce || e.Priority != High || e.Rule != "overheat" || !e.Time.Equal(later) ||
				e.Active != tt.to.Active() {
				t.Fatalf("event %+v", e)
			}
			switch tt.op {
			case Ack:
				if e.User != "api:alice" || e.Comment != "seen" || a.AckedBy != "api:alice" {
					t.Fatalf("ack event %+v alarm %+v", e, a)
				}
			case Shelve:
				if e.ShelvedUntil == nil || !e.ShelvedUntil.Equal(later.Add(time.Hour)) || a.ShelvedBy != "api:alice" || a.ShelveReason != "maintenance" {
					t.Fatalf("shelve event %+v alarm %+v", e, a)
				}
			}
		})
	}
}

func TestShelveLimitsAndExpiry(t *testing.T) {
	m, now := newManager(t, "")
	if _, err := m.ShelveFor("hot", "u", "", 9*time.Hour); !errors.Is(err, ErrShelveTime) {
		t.Fatalf("beyond max_shelve: %v", err)
	}
	if _, err := m.ShelveUntil("hot", "u", "", t0.Add(-time.Second)); !errors.Is(err, ErrShelveTime) {
		t.Fatalf("in the past: %v", err)
	}
	if _, err := m.Acknowledge("nope", "u", ""); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := m.ShelveFor("hot", "u", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Raise("hot", t0); err != nil {
		t.Fatal(err)
	}
	m.Drain(nil)
	m.Expire(t0.Add(59 * time.Minute))
	if a, _ := m.Get("hot"); !a.Shelved {
		t.Fatal("unshelved early")
	}
	*now = t0.Add(time.Hour)
	m.Expire(*now)
	evs := events(t, m)
	if a, _ := m.Get("hot"); a.Shelved || len(evs) != 1 || evs[0].Transition != Unshelve || evs[0].User != "system" || !evs[0].Annunciate {
		t.Fatalf("alarm %+v events %+v", a, evs)
	}
}

func TestDefine(t *testing.T) {
	m, _ := newManager(t, "")
	if err := m.Define(Def{Name: "hot", Priority: Low}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := m.Define(Def{Name: "x", Priority: "urgent"}); err == nil {
		t.Fatal("bad priority accepted")
	}
	if err := m.Define(Def{Name: "a/b", Priority: Low}); err == nil {
		t.Fatal("bad name accepted")
	}
	if _, err := m.Raise("undefined", t0); !errors.Is(err, ErrUnknown) {
		t.Fatalf("raise undefined: %v", err)
	}
}

func TestPendingIsBounded(t *testing.T) {
	m, err := New(Config{MaxPending: 2}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Define(Def{Name: "a", Priority: Low})
	for i := range 5 {
		_, _ = m.Raise("a", t0.Add(time.Duration(2*i)*time.Second))
		_, _ = m.Clear("a", t0.Add(time.Duration(2*i+1)*time.Second))
	}
	if n := len(m.Drain(nil)); n != 2 {
		t.Fatalf("%d events kept", n)
	}
	if st := m.Status(); st.Counters["events_dropped"] != 8 || st.Counters["transitions"] != 10 || st.Gauges["rtn_unack"] != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestPersistence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "alarms.json")
	m, _ := newManager(t, file)
	if _, err := m.Raise("hot", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Acknowledge("hot", "api:alice", "ok"); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	m2, _ := newManager(t, file)
	a, _ := m2.Get("hot")
	if a.State != Acked || a.AckedBy != "api:alice" || a.Message != "too hot" {
		t.Fatalf("restored %+v", a)
	}
	if err := os.WriteFile(file, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, file, nil); err == nil {
		t.Fatal("a corrupt state file was accepted")
	}
}

func TestLoadsVersion1StateFile(t *testing.T) {
	m, _ := newManager(t, "") // defines "hot" only
	restored, err := load("testdata/state_v1.json")
	if err != nil || restored["filler_overheat"].State != Acked || restored["filler_overheat"].AckedBy != "api:alice" {
		t.Fatalf("load = %+v, %v", restored, err)
	}
	_ = m
}

// A hot reload rebuilds the rules: the same rule defining its alarm again
// keeps its state and takes the new text; another rule may not take it.
func TestRedefineBySameRuleKeepsState(t *testing.T) {
	m, err := New(Config{}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Define(Def{Name: "hot", Priority: Low, Rule: "r1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Raise("hot", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.Define(Def{Name: "hot", Priority: High, Message: "new", Rule: "r1"}); err != nil {
		t.Fatalf("redefine by the same rule: %v", err)
	}
	if a, _ := m.Get("hot"); a.State != Unack || a.Priority != High || a.Message != "new" {
		t.Fatalf("after redefine: %+v", a)
	}
	if err := m.Define(Def{Name: "hot", Priority: Low, Rule: "r2"}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("another rule: %v, want ErrDuplicate", err)
	}
}
