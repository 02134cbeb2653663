// Package wirecount counts the bytes a sink puts on the wire to its
// destination, for the sinks' wire_bytes counter (metric
// weir_sink_wire_bytes_total).
//
// Where a client library lets us dial, the sink wraps the connection it
// dialled in a Conn: every byte written to the socket is counted, so the
// figure includes what the payload alone does not — protocol framing,
// TLS records and handshakes, keep-alives, acknowledgements the client
// sends, reconnect handshakes. That is the number a security team or a
// metered uplink cares about; it is not comparable byte-for-byte with a
// payload estimate. A Counter is shared by every connection a sink makes,
// so the total survives reconnects.
package wirecount
