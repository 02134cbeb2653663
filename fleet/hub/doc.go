// Package hub is `weir hub`, the central control plane of a Weir fleet
// (issue 15): desired state, enrolment and the hub's audit trail, all kept
// in NATS JetStream (KV buckets with history, streams). There is no state
// in the process: replicas against one NATS answer requests in one queue
// group and update shared state only by compare-and-set on KV revisions,
// so they never conflict and never need consensus of their own.
//
// The hub runs an embedded nats-server (one node, JetStream under
// DATA_DIR/jetstream) in operator mode, or uses an existing NATS by URL
// that trusts its operator (DATA_DIR/keys/nats-resolver.conf). Its keys —
// NATS operator, account, account signing key, and the ed25519 key that
// signs bundles — are created once in DATA_DIR/keys (0600) and are the
// hub's identity: replicas share that directory.
//
// Sites connect out only, with per-site credentials (a user JWT issued at
// enrolment for the site's own nkey) that allow exactly the site's own
// subjects (SitePermissions). The subject and bucket layout is in wire.go
// and docs/fleet.md.
//
// Publishing a layer (base, group or site) first renders every affected
// site with it (fleet/bundle: precedence, ties, validation): one problem
// anywhere refuses the whole publish and stores nothing. Then each site
// whose rendering changed gets the next version, signed, stored in
// weir_desired by compare-and-set (versions per site are monotonic across
// replicas) and republished by JetStream to weir.desired.<site>.
//
// Package hubtest starts a real hub for tests (the agent's too).
package hub
