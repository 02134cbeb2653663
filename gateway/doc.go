// Package gateway is Weir's composition root: it builds one node — engine,
// sources, sinks and their buffers, the processor chain with the
// gateway's own stages (security events, rules, alarms, latest values), the write
// gate and its audit trail, alarms, MQTT commands, authentication and the
// HTTP API — from a *config.Config, runs it, and applies a new
// configuration to it live.
//
// Lifecycle: New builds everything without network I/O (a failure
// releases what was opened: durable buffers, the trail, the listener);
// Run starts every part under one errgroup and returns when ctx ends
// (downstream drains first, what cannot be delivered stays in the durable
// buffers); Close releases a gateway that never ran.
//
// Hot reload (Apply, ApplyYAML, Reload): applies are serialised. The new
// configuration is validated first — every problem at file:line — and
// refused whole when invalid. config.Compare gives the difference; only
// added and changed sources and sinks are built, and the engine swaps
// them (engine.Apply) while every other component keeps its connection,
// session, subscriptions and buffer. The processor chain is rebuilt when
// processors or rules changed; the alarm manager and the latest-value
// store live as long as the gateway, so alarm states and values survive.
// Keys that only a restart applies (http, auth, audit, data_dir, ...) are
// reported and logged, not applied. Every apply, and every refused one,
// is a config.applied security event with the actor, the SHA-256 of the
// text and the summary of the change.
//
// Caveats: an alarm whose rule was removed stays defined (with its
// state) until the next restart; the historian route of the API exists
// only when a historian sink was configured at start.
package gateway
