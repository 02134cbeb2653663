// Package layout holds a meta-test of the house style: every component
// directory looks the same, so a reader (or the fleet manager) finds its
// sample configuration and README in the same place.
package layout

import (
	"os"
	"path/filepath"
	"testing"
)

// notComponents are directories under the component roots that are
// helpers, not configurable components.
var notComponents = map[string]bool{"sinks/sinktest": true, "buffer/buffertest": true, "processors/match": true,
	// latest has no configuration block (the gateway wires it), so no sample.yaml.
	"processors/latest": true}

func TestEveryComponentDirectoryIsComplete(t *testing.T) {
	root := "../.."
	var dirs []string
	for _, parent := range []string{"sources", "processors", "sinks", "buffer"} {
		entries, err := os.ReadDir(filepath.Join(root, parent))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() && e.Name() != "testdata" && !notComponents[parent+"/"+e.Name()] {
				dirs = append(dirs, parent+"/"+e.Name())
			}
		}
	}
	// Components that stand alone: each has a configuration block too.
	dirs = append(dirs, "sim", "alarms", "api", "audit", "auth", "rules", "route", "secevents", "writegate", "writegate/mqttcmd", "fleet/agent", "fleet/hub")
	if len(dirs) < 3 {
		t.Fatalf("found only %v", dirs)
	}
	for _, d := range dirs {
		t.Run(d, func(t *testing.T) {
			for _, f := range []string{"README.md", "sample.yaml", "doc.go"} {
				if _, err := os.Stat(filepath.Join(root, d, f)); err != nil {
					t.Errorf("%s lacks %s", d, f)
				}
			}
			tests, _ := filepath.Glob(filepath.Join(root, d, "*_test.go"))
			if len(tests) == 0 {
				t.Errorf("%s has no tests", d)
			}
		})
	}
}
