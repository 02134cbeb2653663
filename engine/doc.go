// Package engine runs a graph of sources, a processor chain and sinks, and
// owns their lifecycle:
//
//   - start downstream first: every sink's buffer exists and its worker is
//     started (it connects, with backoff) before any source runs, so the
//     first samples have somewhere to go even while a sink still connects;
//   - a source's Emit stamps each sample with a sequence id and runs the
//     processor chain under one mutex, then, outside it but in sequence
//     order, pushes copies into every sink's own bounded Buffer (a slow sink
//     never stalls another unless its policy is "block", and even then only
//     the Emit calls waiting to push wait: processors and rules keep
//     running for every other source);
//   - a sink with a route (SinkSpec.Route, package route; config gives
//     every sink one) receives, in the same push turn, what its route makes
//     of the batch: the tags it selects and its class allows, through its
//     own processors; their time-driven output is flushed on Tick to that
//     sink only. The shared chain, where rules and alarms run, sees every
//     sample; a sink without a route takes the batch as it is;
//   - a failing component is restarted with exponential backoff and jitter;
//     a panic in a component is recovered and treated as a failure, so one
//     component never takes the process down;
//   - a component whose Source.Run or Sink.Connect reports
//     pipeline.ErrPermanent (a secret that is not set, an unreadable CA
//     file) is marked failed with the message, logged once at error level
//     and not retried: it stays failed until the process restarts. A failed
//     sink's buffer keeps its samples;
//   - stop upstream first: sources are cancelled and waited for, then the
//     connected sinks drain their buffers until empty or until the drain
//     deadline, then close. A sink that is not connected when the drain
//     begins (never connected, lost its connection, failed) is not waited
//     for: it could not deliver before the deadline, and its samples stay
//     in its buffer (a durable buffer keeps them for the next run).
//
// Hot reload (Apply, apply.go): while Run runs, a Change removes and adds
// named sources and sinks and replaces the processor chain. What it does
// not name keeps running untouched (connection, session, buffer). The
// processors and the set of sinks change at one cut in the push order, so
// every batch went through exactly one chain into one set of sinks; a
// removed sink is stopped, closed and its buffer released (a durable one
// keeps its samples on disk); a changed sink may take over its
// predecessor's buffer (Change.KeepBuffers) or reopen the same directory
// (SinkSpec.OpenBuffer). A malformed Change is refused before anything
// stops. Shutdown stops what Apply added like the rest.
//
// Readiness (Status.Ready, /readyz): the engine is ready while Run runs and
// data can flow end to end, that is at least one source is up and at least
// one sink is up; a kind with no components configured does not count.
// A source is up while the engine runs it (not restarting, not failed) and
// it does not report itself down (connecting, retrying, stopped, failed);
// a source with parts (the devices of a Modbus source) is up while any
// part is running. A sink is up while it is connected and its last write
// succeeded (state running). Status.NotReady names the components that are
// down.
//
// The engine knows components only through the pipeline interfaces; building
// them from configuration is the caller's job (see package config).
package engine
