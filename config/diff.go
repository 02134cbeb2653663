package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Diff says what differs between a running configuration and a new one,
// in the terms hot reload acts on: named sources and sinks added, removed
// or changed (any key of their block), whether the processing chain
// (processors, rules, alarms, write policies …) changed, and which
// top-level keys changed that only take effect at a restart.
type Diff struct {
	Sources ComponentDiff `json:"sources"`
	Sinks   ComponentDiff `json:"sinks"`
	// KeepBuffers lists the changed sinks whose buffer block is the same:
	// hot reload hands the running buffer, with what it holds, to the new
	// sink (engine.Change.KeepBuffers) instead of reopening it.
	KeepBuffers []string `json:"keep_buffers,omitempty"`
	// Processors is whether the processing chain must be rebuilt: the
	// processors list (any name, order or key), or the rules, rule
	// actions or alarms, which run in the chain.
	Processors bool `json:"processors"`
	// Live lists other top-level keys that changed and are applied live
	// (e.g. "rules", "alarms", "write_policies").
	Live []string `json:"live,omitempty"`
	// Restart lists top-level keys that changed and need a restart to
	// take effect (e.g. "http", "data_dir", "node", "auth", "audit").
	Restart []string `json:"restart,omitempty"`
}

// ComponentDiff lists component names by what happened to them, each in
// name order.
type ComponentDiff struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
}

// liveKeys are the top-level keys a running gateway applies without a
// restart besides sources, processors and sinks; chainKeys those of them
// that run in the processor chain. Every other top-level key needs a
// restart: a key added to Config later is safe by default.
var (
	liveKeys  = []string{"rules", "rule_actions", "alarms", "write_policies", "write_limits", "write_commands", "security_events", "classification"}
	chainKeys = []string{"rules", "rule_actions", "alarms"}
)

// Compare computes the Diff from old to new. Both must be valid. Blocks
// are compared as decoded (after environment expansion), so a secret
// reference that now reads {env: OTHER} is a change, while the value an
// unchanged reference points at is not looked at.
func Compare(old, new *Config) Diff {
	var d Diff
	d.Sources = compareNamed(old.Sources, new.Sources, func(s Source) string { return s.Name })
	d.Sinks = compareNamed(old.Sinks, new.Sinks, func(s Sink) string { return s.Name })
	for _, name := range d.Sinks.Changed {
		o, n := findSink(old, name), findSink(new, name)
		if reflect.DeepEqual(o.Buffer, n.Buffer) {
			d.KeepBuffers = append(d.KeepBuffers, name)
		}
	}
	oldTop, newTop := topLevel(old), topLevel(new)
	for _, key := range slices.Sorted(maps.Keys(newTop)) {
		if reflect.DeepEqual(oldTop[key].Interface(), newTop[key].Interface()) {
			continue
		}
		switch {
		case key == "sources" || key == "sinks":
			// per name, above
		case key == "processors":
			d.Processors = true
		case slices.Contains(liveKeys, key):
			d.Live = append(d.Live, key)
			if slices.Contains(chainKeys, key) {
				d.Processors = true
			}
		default:
			d.Restart = append(d.Restart, key)
		}
	}
	return d
}

// compareNamed sorts components by name into added, removed and changed
// (any difference in the whole entry).
func compareNamed[T any](old, new []T, name func(T) string) ComponentDiff {
	var d ComponentDiff
	was := map[string]T{}
	for _, o := range old {
		was[name(o)] = o
	}
	is := map[string]bool{}
	for _, n := range new {
		is[name(n)] = true
		o, ok := was[name(n)]
		switch {
		case !ok:
			d.Added = append(d.Added, name(n))
		case !reflect.DeepEqual(o, n):
			d.Changed = append(d.Changed, name(n))
		}
	}
	for _, o := range old {
		if !is[name(o)] {
			d.Removed = append(d.Removed, name(o))
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.Sort(d.Changed)
	return d
}

func findSink(c *Config, name string) Sink {
	for _, s := range c.Sinks {
		if s.Name == name {
			return s
		}
	}
	return Sink{}
}

// topLevel maps every top-level YAML key of c to its value, looking into
// inline structs (write_policies, rules …).
func topLevel(c *Config) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			key, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case key == "-":
			case strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct:
				walk(v.Field(i))
			case key != "":
				out[key] = v.Field(i)
			}
		}
	}
	walk(reflect.ValueOf(c).Elem())
	return out
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return len(d.Sources.Added)+len(d.Sources.Removed)+len(d.Sources.Changed)+
		len(d.Sinks.Added)+len(d.Sinks.Removed)+len(d.Sinks.Changed)+len(d.Live)+len(d.Restart) == 0 && !d.Processors
}

// NeedsRestart reports whether part of the change takes effect only at a
// restart.
func (d Diff) NeedsRestart() bool { return len(d.Restart) > 0 }

// String is a one-line human summary ("sources: +plc2 ~opc; sinks: -old;
// processors changed; restart needed for http"), for logs, the audit
// trail and the UI.
func (d Diff) String() string {
	if d.Empty() {
		return "no changes"
	}
	var parts []string
	for _, c := range []struct {
		kind string
		cd   ComponentDiff
	}{{"sources", d.Sources}, {"sinks", d.Sinks}} {
		var names []string
		for _, n := range c.cd.Added {
			names = append(names, "+"+n)
		}
		for _, n := range c.cd.Changed {
			names = append(names, "~"+n)
		}
		for _, n := range c.cd.Removed {
			names = append(names, "-"+n)
		}
		if len(names) > 0 {
			parts = append(parts, c.kind+": "+strings.Join(names, " "))
		}
	}
	if d.Processors {
		parts = append(parts, "processors changed")
	}
	if len(d.Live) > 0 {
		parts = append(parts, "live: "+strings.Join(d.Live, ", "))
	}
	if len(d.Restart) > 0 {
		parts = append(parts, "restart needed for "+strings.Join(d.Restart, ", "))
	}
	return strings.Join(parts, "; ")
}

// Lines is the diff one change per line ("source plc2 added", "sink old
// removed (its durable buffer stays on disk)", "http changed: needs a
// restart"), for the audit trail and the UI.
func (d Diff) Lines() []string {
	var out []string
	for _, c := range []struct {
		kind string
		cd   ComponentDiff
	}{{"source", d.Sources}, {"sink", d.Sinks}} {
		for _, n := range c.cd.Added {
			out = append(out, fmt.Sprintf("%s %s added", c.kind, n))
		}
		for _, n := range c.cd.Changed {
			line := fmt.Sprintf("%s %s changed: restarts alone", c.kind, n)
			if c.kind == "sink" && slices.Contains(d.KeepBuffers, n) {
				line += ", keeps its buffer"
			}
			out = append(out, line)
		}
		for _, n := range c.cd.Removed {
			line := fmt.Sprintf("%s %s removed", c.kind, n)
			if c.kind == "sink" {
				line += " (a durable buffer stays on disk until purged)"
			}
			out = append(out, line)
		}
	}
	if d.Processors {
		out = append(out, "processing chain rebuilt")
	}
	for _, k := range d.Live {
		out = append(out, k+" changed: applied live")
	}
	for _, k := range d.Restart {
		out = append(out, k+" changed: needs a restart")
	}
	return out
}
