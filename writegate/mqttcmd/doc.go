// Package mqttcmd lets tools write tags over MQTT: it subscribes to a
// command topic (default weir/_commands/write), checks each command's
// proof of sender (an HMAC with the caller's key, internal/cmdproof),
// its freshness and its caller's role, passes it to the write gate as
// caller "mqtt:<caller>" and publishes the outcome on <topic>/result.
//
// The identity comes only from the proof: MQTT tells a subscriber nothing
// about the publisher, so a name inside the command would prove nothing.
// A command must carry issued_at within max_age and an id not seen within
// max_age, so a captured command cannot be replayed. Refusals say little
// to the sender ("refused: bad proof") and everything to the log and the
// security recorder. Commands are handled one at a time from a bounded
// queue; when it is full a command is refused with a reply.
package mqttcmd
