package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/latest"
)

// TagBrowser is what GET /api/v1/tags reads; *latest.Store implements it.
// Values.Mount mounts the endpoint when its Store is one.
type TagBrowser interface {
	Children(prefix, after string, limit int) (nodes []latest.Node, total int)
}

var _ TagBrowser = (*latest.Store)(nil)

// Page sizes of GET /api/v1/tags.
const (
	defaultTagsLimit = 200
	maxTagsLimit     = 1000
)

// tagNodeJSON is one child in GET /api/v1/tags: a folder (folder, tags),
// a tag (value, quality, times), or both.
type tagNodeJSON struct {
	Name       string          `json:"name"`
	Path       string          `json:"path"`
	Folder     bool            `json:"folder,omitempty"`
	Tags       int             `json:"tags,omitempty"`
	Value      json.RawMessage `json:"value,omitempty"`
	Quality    string          `json:"quality,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	SourceTime string          `json:"source_time,omitempty"`
	EdgeTime   string          `json:"edge_time,omitempty"`
}

// tags serves GET /api/v1/tags?prefix=P&limit=N&after=C: the direct
// children of P in the unified namespace, sorted by name, one page at a
// time; `next` is the cursor of the following page (absent on the last).
func (v *Values) tags(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix, after := q.Get("prefix"), q.Get("after")
	if len(prefix) > model.MaxPathLen || len(after) > model.MaxPathLen {
		writeError(w, http.StatusBadRequest, "prefix and after are at most "+strconv.Itoa(model.MaxPathLen)+" bytes", nil)
		return
	}
	limit := defaultTagsLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTagsLimit {
			writeError(w, http.StatusBadRequest, "limit must be 1.."+strconv.Itoa(maxTagsLimit), nil)
			return
		}
		limit = n
	}
	// One more than the page tells whether another page follows.
	nodes, total := v.Store.(TagBrowser).Children(prefix, after, limit+1)
	next := ""
	if len(nodes) > limit {
		nodes = nodes[:limit]
		next = nodes[limit-1].Name
	}
	out := make([]tagNodeJSON, len(nodes))
	for i, n := range nodes {
		j := tagNodeJSON{Name: n.Name, Path: n.Path, Folder: n.Tags > 0, Tags: n.Tags}
		if n.HasValue {
			s := n.Sample
			j.Value, j.Quality, j.Reason = s.Value.AppendJSON(nil), s.Quality.Code.String(), s.Quality.Reason
			j.SourceTime, j.EdgeTime = stamp(s.SourceTime), stamp(s.EdgeTime)
		}
		out[i] = j
	}
	writeJSON(w, http.StatusOK, struct {
		Prefix   string        `json:"prefix"`
		Children []tagNodeJSON `json:"children"`
		Total    int           `json:"total"`
		Next     string        `json:"next,omitempty"`
	}{prefix, out, total, next})
}
