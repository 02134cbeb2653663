// Package agent is the site side of a Weir fleet (issue 15): a Weir
// started with a hub block, or weir run --hub, follows the configuration
// its hub publishes for it, keeps running on the last known-good one
// when the hub is away, and reports its health.
//
// Connection. The site dials out only (nats.go: TLS with the pinned CA,
// its own credentials from weir enroll, replies on its own inbox prefix
// _INBOX_<site>, which its credentials confine it to), and reconnects
// forever with backoff and jitter. At every (re)connect it asks
// weir.hub.trust and weir.hub.desired.<site>; between reconnects it
// follows weir.desired.<site> and weir.trust. So a site gets the newest
// version whatever it missed, and never the versions in between.
//
// Apply path. A bundle is decoded and checked by bundle.Store (the
// hub's signature with a pinned key, the site, the hash, a version newer
// than the one held: a tampered, older or replayed bundle is refused and
// the refusal reported). Of all that waits, only the newest valid one is
// applied: its secret references resolved on the site (SiteSecrets), the
// text applied to the gateway by hot reload (gateway.ApplyYAML: validated
// whole, audited as config.applied by "fleet:v<N>"). The site then dwells:
// if within the dwell a source or sink that was up (or is new) is not
// connected, the sinks' buffers grow, new high-priority alarms are raised
// or sink write errors pass a bound, the text that ran before is applied
// again ("fleet:rollback:v<N>"), the known-good bundle stays, the version
// is not tried again, and the report says why. Otherwise the bundle
// becomes the known-good one on disk (atomic, fsynced).
//
// Offline. At start the agent applies the known-good bundle if the
// gateway runs something else (it started from its own file): a site
// cut off for days runs what it last accepted. Reports made while cut
// off are kept (the newest Backlog, default 100) and sent on return, the
// current one first.
//
// Break-glass. An admin may still change the site locally (weir reload,
// the API): the effective configuration then differs from the applied
// version, and the reports say drift with the effective hash until the
// hub publishes a new version (which overwrites the local change) or
// adopts it. Such a change lasts until the next version or restart.
//
// Caveats. The dwell holds the apply loop: a version arriving during one
// waits for it (and then wins if newer). Keys that need a restart (http,
// node, data_dir…) change only at the next restart, as with any reload.
// The effective hash is of the text that runs, after secret references
// are resolved: equal to the bundle's hash only when it has none.
package agent
