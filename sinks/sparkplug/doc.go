// Package sparkplug is a Weir sink that makes the gateway a Sparkplug B 3.0
// edge node (YAML key `sparkplug`): tags become metrics of Sparkplug
// devices, published as NBIRTH/DBIRTH/NDATA/DDATA/DDEATH/NDEATH on
// spBv1.0/<group_id>/<type>/<edge_node_id>[/<device_id>], so that Ignition
// and other Sparkplug host applications discover and consume them without
// configuration. The payload codec is internal/sparkplugb.
//
// # Session
//
// Connect increments bdSeq (0..255, persisted fsync'd in bdseq_file so a
// restart never reuses one), connects with Clean Session/Clean Start and the
// NDEATH will (bdSeq only, QoS 1, not retained), subscribes to
// spBv1.0/<g>/NCMD/<e> (and the primary host's STATE topic) at QoS 1, then
// publishes NBIRTH (seq 0; bdSeq, Node Control/Rebirth=false, node metrics)
// and a DBIRTH for every device known. One seq counter (0..255, wrapping)
// is shared by every NBIRTH/DBIRTH/NDATA/DDATA/DDEATH. Close publishes NDEATH
// (QoS 1, confirmed) before DISCONNECT.
//
// # Tags → devices and metrics
//
// See DeviceConfig: by default the device id is the tag's asset path with
// '/' → ':' and the metric name its last level; single-level tags are node
// metrics. Metric aliases (1, 2, …, unique across the node) are assigned on
// first sight; births carry name + alias + datatype + current value, DATA
// messages alias only, without datatype (spec 6.4). A DBIRTH (NBIRTH for a
// node metric) is published again whenever a new tag appears on a device
// or a tag's values change kind (datatype), before the data that needs it.
// Datatypes follow internal/sparkplugb.DataTypeOf: Double, Int64, UInt64,
// Boolean, String and the matching array types.
//
// # Samples → metrics
//
// Report by exception, Sparkplug's own model, is the default: a DATA
// message carries a metric only when its value or quality differs from
// the last one published for it (the first value after any birth, a
// rebirth included, always goes out; a failed Write resets the memory so
// its retry sends everything). Unchanged samples are acknowledged like
// published ones — the host already has that value — and counted as
// unchanged_samples. report_by_exception: false publishes every sample;
// a deadband processor upstream suppresses changes too small to matter.
// Metric timestamp = SourceTime (ms); Historical →
// is_historical; a sample without value → is_null. Properties: "Quality"
// (Int32; 192 good / 0 bad / 500 stale, Ignition's convention — only when
// not good), "weir_reason" (String, the quality reason, when not good) and
// "weir_seq" (UInt64, Weir's Seq, for de-duplicating replays; seq_property:
// false drops it).
//
// A device whose every metric's latest sample is bad gets DDATA (with the
// bad qualities) then DDEATH; further all-bad samples for it are not
// published (counted as suppressed_samples: DDEATH already marks its metrics
// stale); the first non-bad sample brings DBIRTH then DDATA.
//
// # Confirmation and QoS
//
// The spec requires QoS 0 for births and data; Write then returns nil once
// every message is written to the socket, which is not delivery: a broker
// that dies right then loses the message and the engine will not resend.
// data_qos: 1 publishes births, data and DDEATH at QoS 1 and returns only
// after every PUBACK — a deviation from the spec's QoS rule that brokers and
// hosts accept, recommended where Weir's no-loss guarantee matters. On a
// lost connection Write returns ErrDisconnected, the next Connect starts a
// new session (new bdSeq, births) and the batch is sent again
// (at-least-once; weir_seq identifies repeats).
//
// # Primary host
//
// With primary_host_id, nothing is published (no births, no data) until
// STATE says the host is online: Write returns an error that is neither
// ErrRejected nor ErrDisconnected, so the engine keeps the data buffered
// and retries. STATE messages older than the last seen are ignored. When the
// host goes offline the node publishes NDEATH and disconnects, as the spec
// requires, and reconnects waiting for the host. legacy_state: true follows
// pre-3.0 hosts (topic STATE/<host>, payload ONLINE/OFFLINE).
//
// # Commands
//
// NCMD Node Control/Rebirth=true republishes NBIRTH (seq 0, same bdSeq)
// and every DBIRTH, at most once per rebirth_debounce. DCMD is not
// subscribed: the node is read-only unless SetWriteGate gives it the write
// gate (commands.go); then DCMD and NCMD metrics become gated writes —
// only when commands.trust is broker_acl. Sparkplug B carries no proof of
// sender, so the configuration must say that the broker's ACL is the
// proof; until it does, every write command is refused and reported.
package sparkplug
