// Package tlsconf is the `tls:` configuration block shared by every network
// client and server in Weir (MQTT, HTTP, NATS, Kafka sinks; the API server),
// so that operators learn one set of keys.
//
// Validate checks the block without touching the file system, so configs can
// be checked on another machine. Load (client side) and LoadServer (server
// side) read the PEM files; call them at connect or listen time so that
// certificates rotated on disk are picked up on the next reconnect; their
// errors wrap pipeline.ErrPermanent, since a missing or invalid file is not
// fixed by retrying. Check reads the same files for `weir validate` and
// reports every problem at its key, plus certificates about to expire.
//
// Package tlstest generates a throw-away CA and key pairs for tests.
package tlsconf
