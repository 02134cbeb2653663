// Package secevents carries Weir's security events out of the box, to the
// people who watch for attacks (a SOC, a SIEM).
//
// Components report what happened through the security.Recorder seam
// (authentication failures, denied writes, refused requests, configuration
// changes, certificate rejections, new peers, audit problems). Stream is
// that Recorder for a running gateway. It sends every event two ways:
//
//   - into the pipeline: each event is a sample on
//     <prefix>/_security/<kind> whose string value is the event as compact
//     JSON (Event; the schema is in docs/payloads.md). Stream is a
//     pipeline.Flusher in the processor chain, as the alarm events are, so
//     the events reach the sinks behind their buffers: a durable buffer
//     keeps them across an outage of the IT side and a restart of Weir.
//     Like any tag they go through each sink's route and classification
//     (class internal unless a rule says otherwise), so a sink gets them
//     only if its route selects the path and its max_class allows them.
//     Rules after it can raise alarms on them.
//   - to a syslog collector, as RFC 5424 messages (structured data under
//     SD-ID weir@32473) over udp (RFC 5426), tcp (RFC 6587, octet counting)
//     or tls (RFC 5425), reconnecting with backoff and jitter.
//
// Record never blocks the caller and never fails: each path has a bounded
// queue; an event that does not fit is dropped and counted (Stats, and the
// weir_security_* metrics). A collector that is away degrades only this
// stream: the queue fills, then drops, and the sender reconnects by itself.
// Every field is capped and cleaned on the way in (valid UTF-8, no control
// characters, so no forged log lines), and the kind is made fit for a tag
// path and a syslog MSGID.
//
// Caveats: the syslog queue is in memory, so events queued for a collector
// that is away when Weir stops are lost (the sinks' durable buffers keep
// theirs); events recorded after the engine's last tick at shutdown reach
// syslog only. Plain tcp cannot tell whether the collector read a message:
// one written just before the collector dies may be lost (RFC 6587 has no
// acknowledgement); the sender notices a closed connection before its next
// write and resends only a message whose write failed.
package secevents
