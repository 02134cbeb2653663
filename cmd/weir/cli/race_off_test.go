//go:build !race

package cli

// raceFlags build a helper binary the way this test binary was built, so
// that the go command reuses the packages it compiled for the tests.
var raceFlags []string
