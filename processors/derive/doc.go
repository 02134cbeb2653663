// Package derive is Weir's derived-tag processor: each configured tag is an
// expression in the expr language (github.com/expr-lang/expr) over the
// latest values of other tags, such as power from voltage and current.
//
// Expressions are compiled and type-checked by Validate against the
// declared types of their inputs (float unless declared), so a typo or a
// type error shows at `weir validate` with the tag's key path, the derived
// tag and the line:column in the expression; New compiles them once more for
// use. The result type is checked too: an expression yielding a float for
// an int tag is an error rather than a silent truncation.
//
// At run time the processor remembers the latest value, quality and
// timestamps of every input. After each batch it computes every derived tag
// an input triggered (on: any — any input updated, once every input has a
// value; on: all — every input updated since the last computation), at most
// once per batch, and appends the result to the batch. The result's
// SourceTime and EdgeTime are the newest of its inputs'.
//
// Quality: a bad input (or one whose value the declared type cannot hold)
// makes the result bad without evaluating; an uncertain input makes it
// uncertain. A runtime error (integer modulo by zero, ...) or a non-finite
// float result (x/0 is ±Inf in expr, 0/0 NaN) makes it bad with no value;
// the VM never panics the pipeline.
//
// Caveats: inputs never expire — a derived tag keeps using the last value of
// an input that stopped updating (its SourceTime, the newest input's, does
// not show that). Derived samples are appended by Process and carry Seq 0;
// see the README.
package derive
