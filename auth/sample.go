package auth

import _ "embed"

// SampleConfig is a complete, valid example of the `auth:` block.
//
//go:embed sample.yaml
var SampleConfig string
