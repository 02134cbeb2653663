// Package latest is the latest-value store: a pipeline processor that
// remembers the newest sample of every tag and passes every batch on
// unchanged. The HTTP API reads it for GET /api/v1/values (api.ValueStore),
// so an operator sees the current value of a tag without a sink round
// trip.
//
// It is wired by the gateway, not by configuration: it has no
// configuration block and is not listed under processors:. The gateway
// puts it last in the chain, after the rules, so it shows what the sinks
// get, derived tags and alarm events included.
//
// Memory is bounded: the store holds at most max tags (DefaultMaxTags
// unless told otherwise); samples of further new tags are passed on but
// not remembered, and counted (Status counter "untracked_samples"). A
// replayed, historical sample never hides a newer live value: a sample
// replaces the stored one only if its SourceTime is not older. Array
// values are copied, because the batch's owner may reuse the elements.
//
// Subscribers (Subscribe; the live stream of the HTTP API) get the
// stored samples of the tags they match, coalesced per tag in a bounded
// pending set: Process never waits on them, a slow one skips intermediate
// values and, past its bound, resyncs from the store. Children lists one
// level of the tag tree for a browsing UI.
//
// It lived in package writegate until the gateway's pieces were given
// their own packages; it has nothing to do with writes.
package latest
