// Package mqtt is Weir's unified-namespace MQTT sink: it publishes samples
// to a broker under topics that mirror the tag paths, in the JSON payload
// of package internal/payload.
//
// Topics. In "sample" mode each sample is one message on
// "<topic_prefix>/<tag path>". In "batch" mode the samples of one Write are
// grouped by asset (the tag path without its last level) and each asset
// gets one message on "<topic_prefix>/<asset path>" listing its samples in
// batch order. A retained "online" on the status topic
// ("<topic_prefix>/_status/<client_id>" by default) announces every
// connect; "offline" is published on Close and registered as the last will,
// so the broker publishes it when the gateway vanishes.
//
// Delivery. Write returns nil only when every message is confirmed: a
// PUBACK at QoS 1, handed to the socket at QoS 0. When the connection is
// lost, Write returns an error wrapping pipeline.ErrDisconnected; the
// engine calls Connect again (with backoff and jitter) and offers the same
// batch, so delivery is at-least-once and consumers de-duplicate by seq.
// Neither client library reconnects or queues on its own: the durable
// buffer in front of the sink is the only queue.
//
// Concurrency. At QoS 1 up to max_inflight messages await their PUBACK at
// once. MQTT 5 (paho.golang, whose Publish blocks until acknowledged) uses
// at most max_inflight worker goroutines per Write, each owning the topics
// that hash to it, so that one topic's messages keep their batch order even
// with retain. MQTT 3.1.1 (paho.mqtt.golang, which returns a token per
// publish and writes from one goroutine) keeps a window of max_inflight
// tokens from the Write goroutine itself. No goroutine per sample.
//
// Poison samples never block: samples whose topic would be invalid (not
// UTF-8, a '+' or '#', control characters, empty levels) are not sent and
// come back rejected (pipeline.RejectedError), counted as invalid_samples,
// because a broker would close the connection and the batch would never
// get out. Nor is a message larger than the Maximum Packet Size an MQTT 5
// broker announced in its CONNACK (a batch-mode message is split first):
// its samples come back rejected as oversize. A message the broker
// disconnects over anyway is isolated by publishing one message at a time
// (isolate.go) and rejected as oversize (0x95 packet too large) or
// malformed. The engine dead-letters rejected samples.
//
// Caveats:
// With MQTT 3.1.1 a Write interrupted by a connection loss may take up to
// connect_timeout to return (paho.mqtt.golang blocks a publish being handed
// over until its write timeout). The password is read at Connect and
// never logged or reported.
package mqtt
