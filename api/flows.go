package api

import (
	"net/http"

	"github.com/weir-edge/weir/flows"
)

// FlowMapper is the data-flow map's source; *flows.Sampler implements it.
type FlowMapper interface {
	Map() flows.Map
}

var _ FlowMapper = (*flows.Sampler)(nil)

// Flows serves the data-flow map (package flows): source → shared chain →
// route → sink with totals and rates, so that what leaves the site is
// visible to anyone who may read the status (viewer).
//
//	GET /api/v1/flows   flows.Map as JSON
type Flows struct {
	Mapper FlowMapper
}

// Mount registers the endpoint on mux; nothing when Mapper is nil.
func (f *Flows) Mount(mux *http.ServeMux) {
	if f.Mapper == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/flows", f.serve)
}

func (f *Flows) serve(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, f.Mapper.Map())
}
