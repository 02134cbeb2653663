// Package security holds the vocabulary every way into Weir shares: the
// roles a caller can hold and the security events a component reports.
//
// It is deliberately tiny and imports nothing of Weir's, so the HTTP API,
// the MQTT command channels, the write gate, the audit trail and the
// event stream for the SOC (syslog, sinks) can all depend on it without
// depending on one another. Components are handed a Recorder; what the
// recorder does with an event (append it to the audit trail, send it to
// syslog, publish it through the sinks, count it) is the composition
// root's business.
package security
