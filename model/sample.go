package model

import "time"

// Sample is one value of one tag at one instant. Samples travel in batches
// ([]Sample) and are passed by value; a Sample holds no pointers into its
// producer's buffers.
type Sample struct {
	// Path is the tag's full path in the unified namespace. Sources build it
	// once per tag at configuration time so that emitting a sample never
	// allocates a path.
	Path  string
	Value Value
	// Quality says whether Value can be trusted. A bad sample usually has an
	// invalid Value.
	Quality Quality
	// SourceTime is when the value was taken (device timestamp when the
	// protocol has one, else when the response arrived), in Unix ns.
	SourceTime int64
	// EdgeTime is when Weir received the value, in Unix ns.
	EdgeTime int64
	// Seq is a per-process monotonically increasing id assigned by the engine
	// when the sample enters the pipeline. Consumers use it to order and
	// de-duplicate replays; wall time is not trusted for either.
	Seq uint64
	// Historical marks a value replayed from a buffer rather than live.
	Historical bool
}

// Time converts a Unix-ns timestamp to time.Time in UTC.
func Time(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Tag is the definition of a tag: its path and its metadata. Metadata lives
// here, not in each Sample.
type Tag struct {
	Path        string
	Kind        Kind
	Unit        string
	Description string
	// Min and Max are the engineering range, when known; both zero means
	// unknown.
	Min, Max float64
	// Writable reports whether the device allows writes. Whether Weir allows
	// them is a separate policy.
	Writable bool
}

// Size estimates the bytes a sample carries, independent of any wire
// format: its path, its value (8 bytes for a number or boolean, the bytes
// of a string, the sum over an array's elements), 16 bytes of timestamps
// and one of quality plus its reason. Routes count it as the bytes that
// flow into and out of them; what a destination actually sends is the
// sink's own wire_bytes.
func (s *Sample) Size() int {
	return len(s.Path) + s.Value.size() + 17 + len(s.Quality.Reason)
}

func (v Value) size() int {
	switch v.kind {
	case KindInvalid:
		return 0
	case KindString:
		return len(v.str)
	case KindArray:
		n := 0
		for _, e := range v.arr {
			n += e.size()
		}
		return n
	default:
		return 8
	}
}
