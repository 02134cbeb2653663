// Package simopcua serves the simulated filling line (package sim) over
// OPC UA, with gopcua's server package, so that Weir's OPC UA source and
// `weir browse` have a server to talk to without any hardware.
//
// Namespace 1 (urn:weir:sim) holds three folders under Objects:
//
//   - filler: every plant tag as a variable, ns=1;s=filler.<tag>, typed
//     after its Modbus encoding (float32 → Float, unscaled uint16 → UInt16,
//     scaled values → Double …); the writable ones (speed_setpoint,
//     temp_setpoint, fill_volume, batch_id, run_cmd, heater_enable,
//     fault_reset) accept Writes of their exact type, which go through the
//     plant's own limits and interlocks (sim.Plant.WriteValue);
//   - types: a static value of every built-in type, arrays, a value with
//     uncertain and one with bad status, a counter and a ramp;
//   - bench (with Options.BenchNodes): N Doubles changing on every refresh.
//
// Every Refresh the server compares the plant's values with what it serves
// and notifies monitored items of the changed ones; a value keeps its
// source timestamp until it changes. With Options.Step the server also
// advances the plant.
//
// Caveats of the library (gopcua v0.9.1) that the package works around:
// its server accepts any user identity, so ActivateSession is wrapped to
// check user names and passwords; its change notification can block for
// good on a subscription whose client went away, so notifications are
// sent here with a time budget; it ignores data-change filters (deadband)
// and does not implement TranslateBrowsePaths. It never closes a connected
// client's socket, so Close waits up to 10 s for connected clients to go,
// although the port is free at once.
package simopcua
