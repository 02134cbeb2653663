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
//   - a failing component is restarted with exponential backoff and jitter;
//     a panic in a component is recovered and treated as a failure, so one
//     component never takes the process down;
//   - stop upstream first: sources are cancelled and waited for, then sinks
//     drain their buffers until empty or until the drain deadline, then
//     close.
//
// The engine knows components only through the pipeline interfaces; building
// them from configuration is the caller's job (see package config).
package engine
