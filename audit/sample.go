package audit

import _ "embed"

// SampleConfig is a complete, valid example of the `audit:` block.
//
//go:embed sample.yaml
var SampleConfig string
