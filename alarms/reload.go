package alarms

import (
	"fmt"
	"sort"
	"time"
)

// SetConfig applies what of a new `alarms:` block a running manager can
// take without losing alarm states: prefix (events from now on go to the
// new path), max_shelve (checked at the next shelve; a running shelve
// keeps its end) and max_pending. state_file and commands belong to the
// gateway (the file is read once at New, the MQTT subscriber is its own
// component) and are ignored here.
func (m *Manager) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("alarms: %w", err)
	}
	cfg.setDefaults()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.Prefix, m.cfg.MaxShelve, m.cfg.MaxPending = cfg.Prefix, cfg.MaxShelve, cfg.MaxPending
	return nil
}

// RetiredReason is the comment of the clear event Retire emits for an
// active alarm whose definition was removed.
const RetiredReason = "removed from the configuration"

// Retire un-defines alarms that a reload removed (their rule or its alarm
// action is gone). ISA-18.2 wants no alarm to vanish silently while an
// operator still has something to see, and no rule is left to clear it:
//
//   - normal (cleared and acknowledged): it disappears at once;
//   - active (unack or acked): it is cleared now, by user "system" with
//     comment RetiredReason — an event on its path like any clear — so
//     acked becomes normal and disappears, unack becomes rtn_unack;
//   - rtn_unack: it stays, listed, until an operator acknowledges it;
//     the acknowledgement (state normal) removes it.
//
// A retired alarm that a later reload defines again (Define with a rule)
// is taken over with its state. Retired alarms are not restored by a
// restart: the state file is only read for defined alarms.
func (m *Manager) Retire(names []string, at time.Time) {
	sort.Strings(names)
	for _, name := range names {
		m.mu.Lock()
		a, ok := m.alarms[name]
		if !ok {
			m.mu.Unlock()
			continue
		}
		m.retired[name] = true
		state := a.State
		if state == Normal {
			delete(m.alarms, name)
			delete(m.retired, name)
			m.mu.Unlock()
			m.log.Info("alarm removed from the configuration", "alarm", name)
			m.markDirty()
			continue
		}
		m.mu.Unlock()
		if state.Active() {
			_, _ = m.apply(name, Clear, "system", RetiredReason, at, time.Time{})
		}
		m.log.Info("alarm removed from the configuration; kept until acknowledged", "alarm", name, "state", state)
	}
}

// RuleAlarms lists the alarms defined by a rule (Def.Rule set), by name:
// the gateway retires those a reload no longer defines.
func (m *Manager) RuleAlarms() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for name, a := range m.alarms {
		if a.Rule != "" && !m.retired[name] {
			out[name] = a.Rule
		}
	}
	return out
}

func (m *Manager) markDirty() {
	select {
	case m.dirty <- struct{}{}:
	default:
	}
}

// HandOver makes rule the defining rule of the alarm name (a reload that
// moves an alarm action to another or renamed rule), keeping its state;
// the new rule's Define then finds it its own. False when name is not
// defined.
func (m *Manager) HandOver(name, rule string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.alarms[name]
	if ok {
		a.Rule = rule
	}
	return ok
}
