package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/weir-edge/weir/cmd/weir/cli"
)

// go install github.com/weir-edge/weir/cmd/weir@version refuses a main
// module with replace or exclude directives: keep go.mod free of them
// (scripts/install-check.sh runs the install itself; it is slow).
func TestGoModInstallable(t *testing.T) {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "replace" || f[0] == "exclude") {
			t.Errorf("go.mod:%d: %q breaks go install ./cmd/weir@version", i+1, line)
		}
	}
}

// make build and make release stamp variables that must exist, or -X
// silently does nothing.
func TestMakefileStampsExistingVariables(t *testing.T) {
	data, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	stamped := map[string]*string{"Version": &cli.Version, "Commit": &cli.Commit, "Date": &cli.Date}
	found := map[string]bool{}
	for _, m := range regexp.MustCompile(`-X \$\(CLI\)\.(\w+)=`).FindAllStringSubmatch(string(data), -1) {
		if _, ok := stamped[m[1]]; !ok {
			t.Errorf("Makefile stamps cli.%s, which does not exist", m[1])
		}
		found[m[1]] = true
	}
	if !strings.Contains(string(data), "CLI     := github.com/weir-edge/weir/cmd/weir/cli") {
		t.Error("Makefile: CLI is not the cli package path")
	}
	for name := range stamped {
		if !found[name] {
			t.Errorf("Makefile does not stamp cli.%s", name)
		}
	}
}
