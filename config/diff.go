package config

// Diff says what differs between a running configuration and a new one,
// in the terms hot reload acts on: named sources and sinks added, removed
// or changed (any key of their block), whether the processing chain
// (processors, rules, alarms, write policies …) changed, and which
// top-level keys changed that only take effect at a restart.
type Diff struct {
	Sources    ComponentDiff
	Sinks      ComponentDiff
	Processors bool
	// Live lists other top-level keys that changed and are applied live
	// (e.g. "rules", "alarms", "write_policies").
	Live []string
	// Restart lists top-level keys that changed and need a restart to
	// take effect (e.g. "http", "data_dir", "node", "auth", "audit").
	Restart []string
}

// ComponentDiff lists component names by what happened to them.
type ComponentDiff struct {
	Added, Removed, Changed []string
}

// Compare computes the Diff from old to new. Both must be valid.
//
// TODO(reload): implemented by the reload work.
func Compare(old, new *Config) Diff { return Diff{} }

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return len(d.Sources.Added)+len(d.Sources.Removed)+len(d.Sources.Changed)+
		len(d.Sinks.Added)+len(d.Sinks.Removed)+len(d.Sinks.Changed)+len(d.Live)+len(d.Restart) == 0 && !d.Processors
}

// String is a one-line human summary ("sources: +plc2 ~opc; sinks: -old;
// processors changed; restart needed for http"), for logs, the audit
// trail and the UI.
//
// TODO(reload): implemented by the reload work.
func (d Diff) String() string { return "" }
