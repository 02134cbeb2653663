// Package logcapture routes the output of code that does not take a
// *slog.Logger into the gateway's slog handler, so that every line Weir
// prints is a leveled, structured record:
//
//   - the standard library's log package (log.Printf from any dependency,
//     e.g. gopcua's server: "New Node Set: …", "doing objects.", "Started
//     listening on …");
//   - gopcua's debug logger (OPC_DEBUG=debug);
//   - paho.mqtt.golang's ERROR/CRITICAL/WARN/DEBUG loggers and, per
//     client, paho.golang's error logger (Logger).
//
// Libraries that take a logger get one at construction and need nothing
// here: Pebble (buffer/durable; its background errors at warn), franz-go
// (sinks/kafka), mochi-mqtt
// (internal/broker), gopcua's server.SetLogger (sim/opcua); nats.go
// reports through callbacks only.
//
// A line from the log package becomes a record with component "stdlog",
// package set to the Go package that printed it and a level chosen by
// Classify: Warn when it speaks of an error or failure, Debug when a
// dependency printed it (library chatter), Info when Weir's own code did.
//
// Caveats: the standard logger, gopcua's debug logger and paho's loggers
// are process globals, so Install is for the process's entry point (the
// CLI), and the last Install wins until its restore function runs.
// gopcua's per-connection debug loggers (debug.NewPrefixLogger) write to
// os.Stderr directly, only with OPC_DEBUG=debug set, and cannot be routed.
package logcapture
