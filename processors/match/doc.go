// Package match decides which samples a processor applies to.
//
// Every processor takes a `match:` list of MQTT-style topic filters over tag
// paths: "+" matches exactly one level, "#" (last level only) matches the
// rest of the path including none of it, so "acme/plant1/#" matches
// "acme/plant1" itself, as in MQTT. Levels are compared byte for byte and
// are case-sensitive. An empty list matches every path.
//
// Filters are compiled once; Match caches its answer per path string in a
// bounded map, because a gateway sees the same few thousand paths over and
// over and a map hit is cheaper than walking the filters. When the cache is
// full it is cleared rather than evicted entry by entry: bounded memory
// matters more than the occasional re-walk.
//
// A Matcher is not safe for concurrent use; processors call it under the
// engine's processor lock.
package match
