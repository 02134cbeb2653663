package agent

import (
	"bytes"
	_ "embed"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
)

//go:embed sample.yaml
var sample []byte

// sample.yaml is a hub block: it decodes strictly into config.Hub, is
// valid, and shows the defaults.
func TestSampleIsAValidHubBlock(t *testing.T) {
	var h config.Hub
	dec := yaml.NewDecoder(bytes.NewReader(sample))
	dec.KnownFields(true)
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if h.ReportIntervalOrDefault() != DefaultReportInterval || h.DwellOrDefault() != DefaultDwell {
		t.Fatalf("sample.yaml says report_interval %s, dwell %s; the defaults are %s and %s", h.ReportInterval, h.Dwell, DefaultReportInterval, DefaultDwell)
	}
}
