// Package mqtt is Weir's MQTT source (YAML key `mqtt` under a source): it
// subscribes to a broker and turns messages into samples of the unified
// namespace, and it can act as a Sparkplug B 3.0 host application.
//
// # Plain topics
//
// Each subscription is a topic filter (with + and #, or $share/<g>/…), a
// tag path template and a payload format. A message is handled by the
// first subscription, in configuration order, whose filter matches its
// topic. The path template is literal text with {topic} (the topic after
// strip_prefix), {N} (its level N, 0-based) and {N+} (levels N to the
// end); topic → path is cached per subscription (bounded). Formats:
//
//   - json: a value and optional timestamp picked by a small dotted
//     selector ($.a.b[0]["odd.key"]), or several tags via fields;
//     timestamps in ms, s, ns (numbers or numeric strings, exact decimal
//     arithmetic) or RFC 3339. JSON null gives a bad sample ("null value").
//   - weir: Weir's own payload (internal/payload), single sample or batch,
//     so that one Weir consumes another's MQTT sink output.
//   - raw: true/false, an integer, a float, or else UTF-8 text.
//
// A payload that cannot be used is counted (decode_errors), logged at most
// every 10 s, and dropped; nothing panics on outside input (fuzzed).
// Empty payloads (deleted retained messages) are skipped.
//
// # Sparkplug B host application
//
// With a sparkplug block the source subscribes to spBv1.0/<group>/# and
// keeps per edge node the birth certificates: name ↔ alias and datatype of
// every node and device metric. NDATA/DDATA metrics are resolved by alias
// (or name) and decoded with the birth's datatype. The seq of NBIRTH,
// DBIRTH, NDATA, DDATA and DDEATH must increase by one mod 256 per edge
// node; a gap, an unknown alias, data before a birth or a malformed payload
// sends NCMD "Node Control/Rebirth" = true, at most once per
// rebirth_interval per edge node. NDEATH (when its bdSeq matches the
// NBIRTH's; a late will is ignored) and DDEATH emit bad samples with reason
// "stale" for the metrics they cover; a new NBIRTH marks the previous
// device metrics stale until their DBIRTH; losing the broker connection
// marks everything bad with reason "node offline" and, after reconnecting,
// asks known edge nodes to rebirth. Tag paths are
// <path_prefix>/<group>/<edge node>[/<device>]/<metric name>, the metric
// name kept with its '/' folders. A Template instance (an Ignition UDT)
// is flattened: each member becomes the tag <metric path>/<member name>,
// recursively for nested instances (G/E/D/Motor1/Status/Running), with the
// datatype its BIRTH gave; NDATA/DDATA may carry only the changed members,
// and a member the BIRTH did not have counts as an unknown alias. Members
// inherit timestamp, Quality and is_historical from the enclosing metric
// when they do not set their own. Template definitions (is_definition, in
// NBIRTH) and parameters are not data. A DataSet gives one tag per column,
// <metric path>/<column>, whose value is an array of the column's cells
// (typed by the column type), one sample per column per message. With
// publish_state the host publishes a
// retained STATE {"online":true,"timestamp":T} after subscribing, with
// {"online":false,"timestamp":T} as its will and on shutdown, and
// republishes online if it sees itself declared offline.
//
// # Connection
//
// Run dials, subscribes and consumes until its context ends; a lost
// connection is re-established with exponential backoff and jitter and
// every subscription is sent again. MQTT 5 (paho.golang) and 3.1.1
// (paho.mqtt.golang) are supported; both deliver messages to one handler
// goroutine in arrival order and acknowledge a QoS 1 message only after
// its samples were accepted by the pipeline (Emit returned), so
// back-pressure reaches the broker and nothing acknowledged is lost in
// Weir. Without sparkplug the session is persistent by default
// (clean_start false; MQTT 5 session_expiry): the broker queues QoS 1
// messages during short outages. Sparkplug requires clean sessions, so
// with a sparkplug block clean_start is true and missed data is recovered
// by rebirth instead.
//
// # Caveats
//
// Delivery is at-least-once: a message whose acknowledgement was lost with
// the connection comes again. The Sparkplug host has no reorder timeout: a
// seq gap asks for a rebirth at once (messages of one edge node travel on
// one client connection, which a single broker does not reorder).
// PropertySet metrics are decode errors ("unsupported datatype
// PropertySet"). Templates nested deeper than 16 levels, a DataSet with
// more than 100 000 cells, rows whose length or cell types do not match
// the columns, and null cells (a model array holds one kind) are decode
// errors for that metric; the other metrics of the payload still come.
// Every instance, member, DataSet and column counts against the 100 000
// registry entries an edge node may have. A DataSet's columns are taken
// from each message, so a column dropped from a table keeps its last value
// until the next birth. Tag paths are not checked for collisions (a metric
// named "A/b" and member b of instance A share a path).
package mqtt
