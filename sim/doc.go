// Package sim simulates Modbus TCP devices for demos, tests and load
// benchmarks, on simonvetter/modbus's server.
//
// A Plant is a small bottle filling line: a heated product tank, a filler
// whose motor current and vibration rise with speed and wear, a bottle
// counter, a checkweigher and a run/stop/fault state machine with
// seed-driven random faults. Its register map (Tags, PlantTags) is the
// single truth of what lives where; the CLI turns it into the demo's Modbus
// source configuration, and README.md shows it as a table. It mixes types
// and register orders on purpose, so the demo exercises every decoder path.
//
// A BenchDevice is a bare block of uint16 holding registers that change on
// every read, for N devices × M tags load tests (ServeMany).
//
// Determinism: the model advances in fixed 100 ms quanta (Quantum), with all
// noise from one seeded PCG generator, so the same seed and the same Step and
// write calls give the same register values, however Step slices time. In
// production a Server's ticker calls Step; tests call it directly.
//
// Caveats: simonvetter's server hides its listener, so Serve with port 0
// picks a free port, releases it and binds again, retrying if another
// process took it in between. The library's connection goroutines exit
// asynchronously, just after Server.Close returns. Modbus has no security:
// bind to loopback unless the network is trusted.
package sim
