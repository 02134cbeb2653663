package route

import _ "embed"

// SampleConfig is a complete, valid example of the `classification:`
// block and of sinks' `max_class:` and `route:` keys, as a fragment of
// weir.yaml; shown by the CLI and checked by the tests (config parses it
// with a source added).
//
//go:embed sample.yaml
var SampleConfig string
