package ua

import "sync/atomic"

// weir patch: nesting bound.
//
// A Variant may hold a DataValue that holds a Variant, an ExtensionObject
// whose structure holds a Variant, a DiagnosticInfo its inner one, and so
// on: the decoder recurses once per level, and a server's message of 2 MB
// (two bytes a level) took the goroutine stack past Go's 1 GB limit — a
// fatal error no recover catches. Every cycle of the type graph passes
// through Variant, ExtensionObject or DiagnosticInfo, so their Decode
// methods count the levels being decoded and refuse past MaxNesting.
//
// Decode has no context to carry a depth in, so the count is shared by all
// goroutines: it bounds the sum of the depths being decoded at one moment.
// Real messages nest a few levels, so even hundreds of concurrent decodes
// stay far below the bound; a refused message fails alone, with
// StatusBadEncodingLimitsExceeded.
var nesting atomic.Int32

// MaxNesting bounds the levels of Variant, ExtensionObject and
// DiagnosticInfo being decoded at once (about 1 KB of stack each).
const MaxNesting = 2000

// enterNested counts one more level; false (and nothing counted) past the
// bound.
func enterNested() bool {
	if nesting.Add(1) > MaxNesting {
		nesting.Add(-1)
		return false
	}
	return true
}

func leaveNested() { nesting.Add(-1) }
