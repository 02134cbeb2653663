// Package kafka is the Kafka sink: it produces samples with franz-go's
// idempotent producer and acks=all, and reports a Write as done only when
// the brokers acknowledged every record.
//
// Records are keyed by tag path (batch mode: asset path), so with the
// default murmur2 partitioner — the same as the Java client's — every tag
// stays in one partition, and idempotence keeps each partition gapless and
// in order across retries. Values are the JSON of internal/payload; headers
// weir-seq (the sample's, or the first sample's, sequence id) and
// weir-historical ("true"/"false") let consumers de-duplicate replays
// without parsing the value.
//
// Caveats: delivery is at-least-once. A partial failure reports the prefix
// of the batch before the first unconfirmed record; records after it that
// did land (other partitions) are produced again on retry, so consumers
// de-duplicate by seq. A Write that gives up on its context leaves records
// already sent with the client; they may still land.
package kafka
