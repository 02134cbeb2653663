package writegate

import _ "embed"

// SampleConfig is a complete, valid example of the `write_policies:`
// list.
//
//go:embed sample.yaml
var SampleConfig string
