package downsample

import _ "embed"

// SampleConfig is a complete, valid example of the processor's
// `downsample:` block, shown by the CLI and checked by the tests.
//
//go:embed sample.yaml
var SampleConfig string
