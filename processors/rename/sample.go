package rename

import _ "embed"

// SampleConfig is a complete, valid example of the processor's `rename:`
// block, shown by the CLI and checked by the tests.
//
//go:embed sample.yaml
var SampleConfig string
