package alarms

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// State is an alarm's ISA-18.2 state. Shelving is tracked beside it, not
// as a state of its own, so a shelved alarm still follows its process
// condition and shows its true state when unshelved.
type State string

// The four states.
const (
	// Normal: the condition is clear and nothing awaits acknowledgement.
	Normal State = "normal"
	// Unack: active, not yet acknowledged by an operator.
	Unack State = "unack"
	// Acked: active and acknowledged.
	Acked State = "acked"
	// RTNUnack: returned to normal (cleared) before anyone acknowledged it.
	RTNUnack State = "rtn_unack"
)

// Active reports whether the alarm's condition is present.
func (s State) Active() bool { return s == Unack || s == Acked }

// Transition names what happened to an alarm; each one is an event.
type Transition string

// The transitions.
const (
	Raise    Transition = "raise"
	Clear    Transition = "clear"
	Ack      Transition = "ack"
	Shelve   Transition = "shelve"
	Unshelve Transition = "unshelve"
)

// Errors of the operator transitions, matched with errors.Is (the API maps
// them to 404 and 409).
var (
	ErrUnknown      = errors.New("no such alarm")
	ErrNothingToAck = errors.New("nothing to acknowledge")
	ErrNotShelved   = errors.New("alarm is not shelved")
	ErrShelveTime   = errors.New("invalid shelve time")
	ErrDuplicate    = errors.New("alarm already defined")

	errEmptyName = errors.New("alarm name is empty")
	errLongName  = errors.New("alarm name is longer than 128 bytes")
	errBadName   = errors.New("alarm name may only hold letters, digits, '_', '-' and '.'")
)

// next is the state machine: the state after t, and whether t applies at
// all (a raise of an active alarm or a clear of an inactive one is not a
// transition and emits nothing; an ack with nothing to acknowledge is an
// error). Shelve and unshelve do not change the state.
func next(s State, t Transition) (State, bool) {
	switch t {
	case Raise:
		switch s {
		case Normal, RTNUnack:
			return Unack, true
		}
	case Clear:
		switch s {
		case Unack:
			return RTNUnack, true
		case Acked:
			return Normal, true
		}
	case Ack:
		switch s {
		case Unack:
			return Acked, true
		case RTNUnack:
			return Normal, true
		}
	case Shelve, Unshelve:
		return s, true
	}
	return s, false
}

// Def defines an alarm; rules call Define for each `alarm:` action.
type Def struct {
	Name     string
	Priority Priority
	Message  string
	// Rule is the rule that raises and clears it.
	Rule string
}

// Alarm is a snapshot of one alarm, as listed by the API.
type Alarm struct {
	Name         string     `json:"name"`
	State        State      `json:"state"`
	Priority     Priority   `json:"priority"`
	Message      string     `json:"message,omitempty"`
	Rule         string     `json:"rule,omitempty"`
	Shelved      bool       `json:"shelved"`
	ShelvedUntil *time.Time `json:"shelved_until,omitempty"`
	ShelvedBy    string     `json:"shelved_by,omitempty"`
	ShelveReason string     `json:"shelve_reason,omitempty"`
	AckedBy      string     `json:"acked_by,omitempty"`
	AckComment   string     `json:"ack_comment,omitempty"`
	AckedAt      *time.Time `json:"acked_at,omitempty"`
	RaisedAt     *time.Time `json:"raised_at,omitempty"`
	ClearedAt    *time.Time `json:"cleared_at,omitempty"`
	ChangedAt    *time.Time `json:"changed_at,omitempty"`
}

// Event is the JSON value of the sample every transition emits on
// <prefix>/_alarms/<name>. See README.md for the field list.
type Event struct {
	Alarm      string     `json:"alarm"`
	Transition Transition `json:"transition"`
	From       State      `json:"from"`
	To         State      `json:"to"`
	Active     bool       `json:"active"`
	Acked      bool       `json:"acked"`
	Shelved    bool       `json:"shelved"`
	// Annunciate is true when the transition calls for an operator's
	// attention: a raise, or an unshelve of an alarm that is active or
	// unacknowledged. Never while shelved.
	Annunciate   bool       `json:"annunciate"`
	Priority     Priority   `json:"priority"`
	Message      string     `json:"message,omitempty"`
	Rule         string     `json:"rule,omitempty"`
	User         string     `json:"user,omitempty"`
	Comment      string     `json:"comment,omitempty"`
	ShelvedUntil *time.Time `json:"shelved_until,omitempty"`
	Time         time.Time  `json:"time"`
}

// Manager holds every alarm's state. It is safe for concurrent use: rules
// raise and clear from the pipeline, operators acknowledge and shelve from
// the API or MQTT. Every transition queues an event sample that Stage
// hands to the pipeline (Drain).
type Manager struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	now      func() time.Time
	alarms   map[string]*Alarm
	restored map[string]Alarm // persisted states awaiting their Define
	// retired are alarms whose definition a reload removed, kept until
	// they are cleared and acknowledged (Retire).
	retired map[string]bool
	pending []model.Sample
	dirty   chan struct{}

	transitions atomic.Uint64
	dropped     atomic.Uint64
	saveFailed  atomic.Uint64
	stateFile   string
}

var _ pipeline.StatusReporter = (*Manager)(nil)

// New builds a Manager. With stateFile set (Config.StateFilePath) it reads
// the states persisted by an earlier run; a missing file is not an error.
func New(cfg Config, stateFile string, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alarms: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, log: log, now: time.Now, alarms: map[string]*Alarm{}, retired: map[string]bool{},
		dirty: make(chan struct{}, 1), stateFile: stateFile}
	if stateFile != "" {
		restored, err := load(stateFile)
		if err != nil {
			return nil, fmt.Errorf("alarms: %w", err)
		}
		m.restored = restored
	}
	return m, nil
}

// SetClock replaces the clock of operator transitions (tests).
func (m *Manager) SetClock(now func() time.Time) {
	m.mu.Lock()
	m.now = now
	m.mu.Unlock()
}

// Prefix is the configured event path prefix.
func (m *Manager) Prefix() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.Prefix
}

// EventPath is the path of alarm name's events.
func (m *Manager) EventPath(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.eventPath(name)
}

// eventPath is EventPath with m.mu held.
func (m *Manager) eventPath(name string) string { return m.cfg.Prefix + "/_alarms/" + name }

// Define adds an alarm in state normal (or the state persisted for it).
func (m *Manager) Define(d Def) error {
	if err := ValidName(d.Name); err != nil {
		return fmt.Errorf("alarms: %w", err)
	}
	if !d.Priority.Valid() {
		return fmt.Errorf("alarms: %s: priority %q is not low, medium, high or critical", d.Name, d.Priority)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, dup := m.alarms[d.Name]; dup {
		// A hot reload rebuilds the rules: the same rule defining its
		// alarm again keeps the alarm's state and takes the new text.
		// A retired alarm (its rule removed by an earlier reload, kept
		// until cleared and acknowledged) is taken over by its new rule.
		if d.Rule != "" && (cur.Rule == d.Rule || m.retired[d.Name]) {
			cur.Priority, cur.Message, cur.Rule = d.Priority, d.Message, d.Rule
			delete(m.retired, d.Name)
			return nil
		}
		return fmt.Errorf("alarms: %s: %w", d.Name, ErrDuplicate)
	}
	a := &Alarm{Name: d.Name, State: Normal, Priority: d.Priority, Message: d.Message, Rule: d.Rule}
	if r, ok := m.restored[d.Name]; ok {
		r.Name, r.Priority, r.Message, r.Rule = a.Name, a.Priority, a.Message, a.Rule
		*a = r
	}
	m.alarms[d.Name] = a
	return nil
}

// Raise marks the alarm active at `at`; a no-op (false) when it already
// is. Called by the rules processor.
func (m *Manager) Raise(name string, at time.Time) (bool, error) {
	return m.apply(name, Raise, "", "", at, time.Time{})
}

// Clear marks the alarm's condition gone at `at`; a no-op (false) when it
// is not active.
func (m *Manager) Clear(name string, at time.Time) (bool, error) {
	return m.apply(name, Clear, "", "", at, time.Time{})
}

// Acknowledge records that user saw the alarm: unack → acked, rtn_unack →
// normal. ErrNothingToAck otherwise. Shelved alarms can be acknowledged.
func (m *Manager) Acknowledge(name, user, comment string) (Alarm, error) {
	return m.operator(name, Ack, user, comment, time.Time{})
}

// ShelveUntil suppresses the alarm's annunciation until `until` (at most
// max_shelve ahead); its state is still tracked and events still flow,
// with annunciate false. Shelving a shelved alarm changes its end time.
func (m *Manager) ShelveUntil(name, user, reason string, until time.Time) (Alarm, error) {
	return m.operator(name, Shelve, user, reason, until)
}

// ShelveFor is ShelveUntil now + d.
func (m *Manager) ShelveFor(name, user, reason string, d time.Duration) (Alarm, error) {
	m.mu.Lock()
	now := m.now()
	m.mu.Unlock()
	return m.operator(name, Shelve, user, reason, now.Add(d))
}

// Unshelve ends shelving early; ErrNotShelved when it is not shelved.
func (m *Manager) Unshelve(name, user, reason string) (Alarm, error) {
	return m.operator(name, Unshelve, user, reason, time.Time{})
}

func (m *Manager) operator(name string, t Transition, user, comment string, until time.Time) (Alarm, error) {
	m.mu.Lock()
	now := m.now()
	m.mu.Unlock()
	if _, err := m.apply(name, t, user, comment, now, until); err != nil {
		return Alarm{}, err
	}
	a, _ := m.Get(name)
	return a, nil
}

// apply runs one transition and queues its event.
func (m *Manager) apply(name string, t Transition, user, comment string, at, until time.Time) (bool, error) {
	// Every time an alarm carries (API, events, state file) is UTC: JSON
	// then reads 2026-03-04T05:06:07.123Z whatever the host's zone.
	at, until = at.UTC(), until.UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.alarms[name]
	if !ok {
		return false, fmt.Errorf("alarms: %s: %w", name, ErrUnknown)
	}
	to, applies := next(a.State, t)
	switch {
	case t == Ack && !applies:
		return false, fmt.Errorf("alarms: %s is %s: %w", name, a.State, ErrNothingToAck)
	case t == Unshelve && !a.Shelved:
		return false, fmt.Errorf("alarms: %s: %w", name, ErrNotShelved)
	case t == Shelve && (!until.After(at) || until.Sub(at) > m.cfg.MaxShelve):
		return false, fmt.Errorf("alarms: %s: %w: shelve until %s must be after now and at most max_shelve %s ahead",
			name, ErrShelveTime, until.Format(time.RFC3339), m.cfg.MaxShelve)
	case !applies:
		return false, nil
	}
	from := a.State
	a.State = to
	ts := at
	a.ChangedAt = &ts
	switch t {
	case Raise:
		a.RaisedAt, a.ClearedAt = &ts, nil
		a.AckedBy, a.AckComment, a.AckedAt = "", "", nil
	case Clear:
		a.ClearedAt = &ts
	case Ack:
		a.AckedBy, a.AckComment, a.AckedAt = user, comment, &ts
	case Shelve:
		u := until
		a.Shelved, a.ShelvedUntil, a.ShelvedBy, a.ShelveReason = true, &u, user, comment
	case Unshelve:
		a.Shelved, a.ShelvedUntil, a.ShelvedBy, a.ShelveReason = false, nil, "", ""
	}
	ev := Event{Alarm: name, Transition: t, From: from, To: to, Active: to.Active(),
		Acked: to == Acked || to == Normal, Shelved: a.Shelved, Priority: a.Priority, Message: a.Message,
		Rule: a.Rule, User: user, Comment: comment, ShelvedUntil: a.ShelvedUntil, Time: at.UTC()}
	ev.Annunciate = !a.Shelved && (t == Raise || (t == Unshelve && (to == Unack || to == RTNUnack)))
	m.queue(ev)
	if m.retired[name] && to == Normal {
		// Removed from the configuration and now cleared and
		// acknowledged: nothing is left for an operator to see.
		delete(m.alarms, name)
		delete(m.retired, name)
	}
	m.transitions.Add(1)
	m.log.Info("alarm "+string(t), "alarm", name, "from", from, "to", to, "priority", a.Priority,
		"shelved", a.Shelved, "user", user)
	select {
	case m.dirty <- struct{}{}:
	default:
	}
	return true, nil
}

// queue turns ev into a sample; called with m.mu held.
func (m *Manager) queue(ev Event) {
	if len(m.pending) >= m.cfg.MaxPending {
		m.dropped.Add(1)
		return
	}
	b, err := json.Marshal(ev)
	if err != nil { // cannot happen: plain fields
		m.dropped.Add(1)
		return
	}
	ns := ev.Time.UnixNano()
	m.pending = append(m.pending, model.Sample{Path: m.eventPath(ev.Alarm), Value: model.String(string(b)),
		SourceTime: ns, EdgeTime: ns})
}

// Expire unshelves every alarm whose shelve time has passed at now, as
// user "system". Stage.Flush calls it on the engine clock.
func (m *Manager) Expire(now time.Time) {
	m.mu.Lock()
	var due []string
	for name, a := range m.alarms {
		if a.Shelved && a.ShelvedUntil != nil && !now.Before(*a.ShelvedUntil) {
			due = append(due, name)
		}
	}
	m.mu.Unlock()
	sort.Strings(due)
	for _, name := range due {
		_, _ = m.apply(name, Unshelve, "system", "shelve time expired", now, time.Time{})
	}
}

// Drain appends the queued event samples to out and returns it.
func (m *Manager) Drain(out []model.Sample) []model.Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) == 0 {
		return out
	}
	out = append(out, m.pending...)
	clear(m.pending)
	m.pending = m.pending[:0]
	return out
}

// Get returns a snapshot of one alarm.
func (m *Manager) Get(name string) (Alarm, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.alarms[name]
	if !ok {
		return Alarm{}, false
	}
	return *a, true
}

// List returns every alarm, by name.
func (m *Manager) List() []Alarm {
	m.mu.Lock()
	out := make([]Alarm, 0, len(m.alarms))
	for _, a := range m.alarms {
		out = append(out, *a)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status reports counters and how many alarms are in each state.
func (m *Manager) Status() pipeline.Status {
	g := map[string]float64{"normal": 0, "unack": 0, "acked": 0, "rtn_unack": 0, "shelved": 0}
	m.mu.Lock()
	for _, a := range m.alarms {
		g[string(a.State)]++
		if a.Shelved {
			g["shelved"]++
		}
	}
	pending := len(m.pending)
	m.mu.Unlock()
	g["pending_events"] = float64(pending)
	return pipeline.Status{Name: "alarms", State: pipeline.StateRunning, Gauges: g, Counters: map[string]uint64{
		"transitions":    m.transitions.Load(),
		"events_dropped": m.dropped.Load(),
		"save_failed":    m.saveFailed.Load(),
	}}
}
