package simopcua

import _ "embed"

// SampleConfig is a complete, valid example of Options in YAML.
//
//go:embed sample.yaml
var SampleConfig string
