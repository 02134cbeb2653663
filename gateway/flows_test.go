package gateway

import (
	"slices"
	"strings"
	"testing"
)

// The running gateway keeps the data-flow map: kinds, classes and routes
// from its configuration, rates from its one-second snapshots (which
// stop with Run).
func TestGatewayFlowMap(t *testing.T) {
	dir := t.TempDir()
	text := offlineConfig(t, dir, startPlant(t, 7), "out", "cloud")
	text = strings.Replace(text, "client_id: apply-cloud}\n", "client_id: apply-cloud}\n    max_class: public\n"+
		"    route: {include: [plant/plc1/#], exclude: [plant/plc1/secret], quality: good,\n"+
		"      processors: [{name: rbe, deadband: {rules: [{match: [\"plant/#\"], absolute: 0.5}]}}]}\n", 1)
	g, _, stop := startFromFile(t, dir, text)
	// Every tag is internal (the default) and cloud takes public only:
	// its route selects them and its class holds them back.
	waitFor(t, "the map to show the PLC's rate and cloud's denied samples", func() bool {
		m := g.flows.Map()
		return len(m.Sources) == 1 && m.Sources[0].Samples.PerSecond > 0 && m.WindowSeconds > 0 &&
			len(m.Sinks) == 2 && m.Sinks[1].Denied.PerSecond > 0
	})
	m := g.flows.Map()
	if src := m.Sources[0]; src.Name != "plc1" || src.Kind != "modbus" {
		t.Errorf("source %+v, want plc1 modbus", src)
	}
	if !slices.Contains(m.Chain.Processors, "rules") || m.Chain.In.Total == 0 {
		t.Errorf("chain %+v, want the gateway's stages and samples in", m.Chain)
	}
	if len(m.Sinks) != 2 {
		t.Fatalf("sinks %+v", m.Sinks)
	}
	out, cloud := m.Sinks[0], m.Sinks[1]
	if out.Name != "out" || out.Kind != "mqtt" || out.MaxClass != "internal" || out.Route.Quality != "any" || len(out.Route.Include) != 0 {
		t.Errorf("out %+v, want mqtt, internal, every tag", out)
	}
	if cloud.Name != "cloud" || cloud.MaxClass != "public" || cloud.Route.Quality != "good" ||
		!slices.Equal(cloud.Route.Include, []string{"plant/plc1/#"}) || !slices.Equal(cloud.Route.Processors, []string{"rbe (deadband)"}) ||
		!cloud.Routed || cloud.In.Total == 0 || cloud.Written.Total != 0 || !slices.Equal(cloud.Route.Exclude, []string{"plant/plc1/secret"}) {
		t.Errorf("cloud %+v, want its route and class", cloud)
	}
	stop()
}
