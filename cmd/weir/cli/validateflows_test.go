package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-edge/weir/config"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// weir validate's "Data flows" section for config/testdata/flows.yaml:
// per sink its class, route, the classes it receives and holds back, and
// the warning for a route that asks for more than its sink may take.
// Regenerate with go test ./cmd/weir/cli -run TestValidateFlowReport -update.
func TestValidateFlowReport(t *testing.T) {
	code, out, errOut := run("validate", "-offline", filepath.Join("..", "..", "..", "config", "testdata", "flows.yaml"))
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	golden := filepath.Join("testdata", "flows.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (make it with -update)", err)
	}
	if out != string(want) {
		t.Errorf("weir validate printed:\n%s\nwant (%s):\n%s", out, golden, want)
	}
}

// The section's edge cases, from data as config.FlowReport gives it.
func TestWriteDataFlows(t *testing.T) {
	tests := []struct {
		name string
		rep  config.DataFlow
		want string
	}{
		{"no sinks, no rules", config.DataFlow{DefaultClass: "internal"},
			"Data flows:\n  classification: default internal\n  known tags: 0\n"},
		{"a sink that receives no known tag", config.DataFlow{DefaultClass: "restricted", KnownTags: 1,
			Classes: []config.ClassCount{{Class: "restricted", Tags: 1}},
			Sinks: []config.SinkFlow{{Name: "out", MaxClass: "public", Quality: "not_bad",
				Denied: []config.ClassCount{{Class: "restricted", Tags: 1}}}}},
			"Data flows:\n  classification: default restricted\n  known tags: 1 (restricted 1 tag)\n" +
				"  sink out, max_class public\n    route:     every tag quality not_bad\n    receives:  no known tag\n" +
				"    held back: restricted 1 tag (above max_class public: counted and reported, never sent)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			writeDataFlows(&b, tc.rep)
			if b.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}
