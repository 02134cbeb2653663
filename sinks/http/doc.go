// Package httpsink sends samples to an HTTP(S) webhook as JSON batches
// (configuration key `http`). It is named httpsink so that it does not
// shadow net/http where both are imported.
//
// # Body
//
// Each Write becomes one or more requests (POST by default, or PUT) with
// Content-Type application/json, optionally gzip-compressed:
//
//	{"node":"weir-line1","samples":[
//	  {"path":"site/line1/temp","value":21.5,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":42},
//	  {"path":"site/line1/door","value":null,"quality":"bad","reason":"timeout","ts":…,"edge_ts":…,"seq":43,"historical":true}]}
//
// Each element is the single-sample payload of package internal/payload
// (value, quality, reason when not good, ts and edge_ts in Unix ms, seq,
// historical when replayed from the buffer) with the tag's full path
// added. Samples appear in the order of the batch, so order per tag is
// kept. node names the gateway; with seq it identifies a sample across
// replays.
//
// A batch whose body would exceed max_body_bytes is split into several
// requests, sent one after another. Every request carries
// "Idempotency-Key: <first seq>-<last seq>" so that a receiver can drop a
// request it already processed when a lost response made Weir send it
// again (delivery is at-least-once).
//
// # Status semantics
//
//   - 2xx: confirmed.
//   - 429 and 503 with a usable Retry-After (seconds or an HTTP date,
//     capped by max_retry_after): *RetryAfterError; without one, a
//     temporary error.
//   - 408, other 5xx, 3xx (redirects are never followed: a POST turned into
//     a GET would be confirmed without being stored) and the 4xx listed in
//     retry_on (default 401, 403, 404, 407, 409, 423, 425): temporary; the
//     engine offers the batch again after a backoff delay.
//   - any other 4xx: the receiver will never accept this batch. The error
//     wraps ErrRejected and the first 512 bytes of the response body are
//     logged.
//   - network failure: wraps pipeline.ErrDisconnected; Connect then builds
//     a fresh transport (re-reading the token and certificates).
//
// When a request fails after earlier requests of the same Write were
// confirmed, Write returns *pipeline.PartialWriteError with the confirmed
// prefix, its Err being one of the above.
//
// # Caveats
//
// A single sample larger than max_body_bytes is sent alone rather than
// never. Connect does no network I/O (HTTP has no session), so an
// unreachable receiver shows at the first Write.
package httpsink
