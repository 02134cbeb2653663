// Package mqttcmd lets tools write tags over MQTT: it subscribes to a
// command topic (default weir/_commands/write), passes each JSON command
// to the write gate as caller "mqtt:<user>" and publishes the outcome on
// <topic>/result.
//
// The gate remains the only way to OT: this package decides nothing
// itself beyond decoding strictly. A command must carry issued_at, which
// the gate checks against its max_age, so a captured command replayed
// later is refused. Commands are handled one at a time from a bounded
// queue; when it is full a command is refused with a reply.
package mqttcmd
