// Package modbus is Weir's Modbus TCP source: it polls holding registers,
// input registers, coils and discrete inputs of PLCs and gateways and emits
// them as tags of the unified namespace.
//
// # Structure
//
// Each configured device has one goroutine and one TCP connection (the
// client is github.com/simonvetter/modbus). That goroutine schedules all of
// the device's groups: a Modbus TCP connection serves one request at a time,
// so polling groups from several goroutines would only queue on it. Devices
// share nothing, so a dead, slow or late device delays only its own groups.
//
// At construction every group's tags are planned into the fewest read
// requests (planRequests): per table, tags sorted by address are merged while
// the request stays within max_registers/max_bits and the holes between tags
// are at most max_gap. Each poll of a group emits exactly one batch with
// all of its tags; SourceTime and EdgeTime are the arrival time of the
// response that carried the tag (Modbus has no device timestamps).
//
// # Failures
//
// A Modbus exception (illegal data address, ...) marks only the tags of that
// request bad, with the exception's name as the quality reason; the device
// stays connected. A timeout or broken connection, once the device's retries
// are used up, marks every tag of the device bad (reason "timeout" or
// "device unreachable") in one batch, emitted once per outage rather than
// per attempt, and the device reconnects with exponential backoff and
// jitter. Responses with a stale transaction id (a late answer to a request
// that already timed out) are discarded by the client library.
//
// # Caveats
//
// Addresses are zero-based PDU addresses: legacy "40001" is holding address
// 0. A request in flight cannot be cancelled, so Run returns up to one
// request timeout after its context ends (up to 5 s, the library's fixed
// dial timeout, while a device is being dialled). Modbus has no
// authentication or encryption: keep devices on a segmented network.
package modbus
