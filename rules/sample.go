package rules

import _ "embed"

// SampleConfig is a complete, valid example of the top-level `rules:` and
// `rule_actions:` keys, shown by the CLI and checked by the tests.
//
//go:embed sample.yaml
var SampleConfig string
