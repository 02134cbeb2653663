package gateway

import (
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/flows"
	"github.com/weir-edge/weir/route"
)

// gatewayStages name the gateway's own stages of the shared chain, after
// the configured processors, in order (see chain).
var gatewayStages = []string{"security-events", "rules", "alarms", "latest-values"}

// flowTopology is the data-flow map's view of the running configuration
// (kinds, classes, routes, the shared chain's names); the numbers come
// from the engine. Read at every map, so a reload shows at once.
func (g *Gateway) flowTopology() flows.Topology {
	g.mu.Lock()
	cfg := g.run.cfg
	g.mu.Unlock()
	return topologyOf(cfg)
}

func topologyOf(cfg *config.Config) flows.Topology {
	var t flows.Topology
	if cfg == nil {
		return t
	}
	for i := range cfg.Sources {
		s := &cfg.Sources[i]
		t.Sources = append(t.Sources, flows.SourceInfo{Name: s.Name, Kind: config.SourceKind(s)})
	}
	for _, p := range cfg.Processors {
		t.Chain = append(t.Chain, p.Name)
	}
	t.Chain = append(t.Chain, gatewayStages...)
	for i := range cfg.Sinks {
		s := &cfg.Sinks[i]
		info := flows.SinkInfo{Name: s.Name, Kind: config.SinkKind(s), MaxClass: route.DefaultClass.String(),
			Route: flows.Route{Quality: route.QualityAny}}
		if c, err := route.ParseClass(s.MaxClass, route.DefaultClass); err == nil {
			info.MaxClass = c.String()
		}
		if r := s.Route; r != nil {
			info.Route.Include, info.Route.Exclude = r.Include, r.Exclude
			if r.Quality != "" {
				info.Route.Quality = r.Quality
			}
			for i := range r.Processors {
				p := &r.Processors[i]
				info.Route.Processors = append(info.Route.Processors, p.Name+" ("+config.ProcessorKind(p)+")")
			}
		}
		t.Sinks = append(t.Sinks, info)
	}
	return t
}
