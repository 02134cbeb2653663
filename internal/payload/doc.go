// Package payload is Weir's JSON encoding of samples, shared by every sink
// that speaks JSON (MQTT now; HTTP, NATS and Kafka later) so that a consumer
// sees one format whatever the transport.
//
// Two shapes exist. A single sample, published on the tag's own topic
// ("<prefix>/<tag path>"):
//
//	{"value":21.5,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":42}
//
// and a batch of the samples of one asset (the tag path without its last
// level), published on the asset's topic ("<prefix>/<asset path>"):
//
//	{"samples":[{"tag":"temperature","value":21.5,"quality":"good","ts":…,"edge_ts":…,"seq":42},…]}
//
// Members, always in this order:
//
//   - tag (batch elements only): the last level of the tag path.
//   - value: a JSON bool, number, string or array; null when the sample has
//     no value or the value is NaN or ±Inf, which JSON cannot carry. A float
//     with an integral value keeps a fraction ("21.0") so that decoders can
//     tell float tags from integer ones.
//   - quality: "good", "uncertain" or "bad" (an unknown code is written as
//     "bad").
//   - reason: present whenever quality is not "good"; may be "".
//   - ts: source timestamp, Unix milliseconds UTC.
//   - edge_ts: when Weir received the value, Unix milliseconds UTC.
//   - seq: Weir's per-process sequence number; consumers order and
//     de-duplicate by it, not by time (edge clocks jump).
//   - historical: true, present only for values replayed from a buffer.
//
// Encoding is append-style into a caller-owned buffer and does not allocate,
// because it runs once per sample on the hot path. Strings are escaped per
// RFC 8259 and invalid UTF-8 is replaced by U+FFFD (one per bad byte), so
// the output is always valid JSON. Decoding (DecodeSample, DecodeBatch) uses
// encoding/json: it serves tests and ingestion, not the hot path, and
// ignores unknown members so that old readers survive new writers.
package payload
