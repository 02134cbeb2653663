package ui

import (
	"net/http"

	"github.com/weir-edge/weir/flows"
)

// FlowMapper is the data-flow map (package flows); *flows.Sampler
// implements it.
type FlowMapper interface {
	Map() flows.Map
}

// The Flows page: source → shared chain → route → sink with live rates,
// the same map as GET /api/v1/flows and weir flows. The map is an htmx
// fragment the page reloads every 3 s; the sampler's ring gives the rates,
// so the page keeps no state of its own.

func (u *UI) flowsPage() Page {
	return Page{Name: "flows", Title: "Flows", Path: "/ui/flows", Nav: true, Handler: u.flows,
		Styles: []string{"css/flows.css"},
		Routes: map[string]http.HandlerFunc{"GET /ui/flows/map": u.flowsFragment}}
}

// flowsData is the flows template's .Data.
type flowsData struct {
	flows.Map
	NoFlows bool
}

func (u *UI) flows(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.flowsPage(), u.flowsData())
}

func (u *UI) flowsFragment(w http.ResponseWriter, r *http.Request) {
	u.RenderFragment(w, r, u.flowsPage(), "map", u.flowsData())
}

func (u *UI) flowsData() flowsData {
	if u.opts.Flows == nil {
		return flowsData{NoFlows: true}
	}
	return flowsData{Map: u.opts.Flows.Map()}
}
