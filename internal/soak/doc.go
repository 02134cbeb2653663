// Package soak is the harness behind `weir soak`: it runs the real weir
// binary as a child gateway (simulated plant → durable buffer → MQTT sink)
// against a broker and a TCP proxy it controls, and for a set time or a set
// number of kills injects faults at random from a seeded RNG — kill -9 of
// the gateway, broker kills and restarts, network drops and blackholes,
// disk-full episodes (root only: the data dir is a small tmpfs) and poison
// samples (a Sparkplug metric name that is not UTF-8, a value larger than
// the broker's maximum packet size). The broker hands
// every message it accepts from the gateway to a Checker, which knows each
// run's first sequence id and what its buffer had accepted, and reports
// delivered, lost, duplicates and order violations per tag.
//
// Caveats: a poison sample a sink dead-letters leaves a gap in the
// sequence ids, which the checker excuses (at most two per poison message
// published during the run); the dead-lettered figure is the gateway's
// dead_letters.rejected in /status, as last read before each kill. The
// embedded broker is mochi on a spare port, never a standard one.
package soak
