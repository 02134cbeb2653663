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

// weir validate's "Data flows" section for the configurations under
// config/testdata: per sink its class, route, the classes it receives and
// holds back, and the warnings. flows.yaml: three sinks on different
// routes and classes. flows-chain.yaml: a shared chain that re-roots the
// namespace and aggregates a confidential tag (the rules follow the data),
// a derived tag below its inputs' class, a route without include and an
// MQTT source whose tags are known only at run time.
// Regenerate with go test ./cmd/weir/cli -run TestValidateFlowReport -update.
func TestValidateFlowReport(t *testing.T) {
	for _, name := range []string{"flows", "flows-chain"} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run("validate", "-offline", filepath.Join("..", "..", "..", "config", "testdata", name+".yaml"))
			if code != 0 {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			golden := filepath.Join("testdata", name+".golden")
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
		})
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
			"Data flows:\n  classification: default internal\n  known tags: 0, as they leave the shared chain\n"},
		{"a sink that receives no known tag", config.DataFlow{DefaultClass: "restricted", KnownTags: 1,
			Classes: []config.ClassCount{{Class: "restricted", Tags: 1}},
			Sinks: []config.SinkFlow{{Name: "out", MaxClass: "public", Quality: "not_bad",
				Denied: []config.ClassCount{{Class: "restricted", Tags: 1}}}}},
			"Data flows:\n  classification: default restricted\n  known tags: 1 (restricted 1 tag), as they leave the shared chain\n" +
				"  sink out, max_class public\n    route:     every tag quality not_bad\n    receives:  no known tag\n" +
				"    held back: restricted 1 tag (above max_class public: counted and reported, never sent)\n"},
		{"MQTT source: tags known at run time", config.DataFlow{DefaultClass: "internal", RuntimeSources: []string{"uns"},
			Sinks: []config.SinkFlow{{Name: "out", MaxClass: "internal", Quality: "any"}}},
			"Data flows:\n  classification: default internal\n  known tags: 0, as they leave the shared chain\n" +
				"  tags of source uns are known only at run time; routes to them are enforced at run time\n" +
				"  sink out, max_class internal\n    route:     every tag\n" +
				"    receives:  no known tag (tags of source uns are known only at run time)\n"},
		{"carried rules", config.DataFlow{DefaultClass: "internal", Carried: []config.FlowRule{{Match: []string{"s/x/#"}, Class: "confidential"}}},
			"Data flows:\n  classification: default internal\n  carried through the shared chain: confidential s/x/#\n" +
				"  known tags: 0, as they leave the shared chain\n"},
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
