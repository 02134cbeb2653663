package ui

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/model"
)

// The tag browser: one level of the unified namespace at a time
// (breadcrumb, folders with the number of tags below, the tags of this
// level with value, quality and timestamps), paginated so that a level
// with 10,000 tags renders one page of rows. js/tags.js keeps the shown
// values live over GET /api/v1/stream (server-sent events), or by polling
// /ui/tags/values when the stream is not there.

// tagsPageSize is the rows (folders and tags) of one page: more than a
// panel PC shows at once, and few enough to subscribe to one by one
// (GET /api/v1/stream takes at most 64 patterns).
const tagsPageSize = 50

func (u *UI) tagsPage() Page {
	return Page{Name: "tags", Title: "Tags", Path: "/ui/tags", Nav: true, Scripts: []string{"js/tags.js"},
		Handler: u.tags, Routes: map[string]http.HandlerFunc{"GET /ui/tags/values": u.tagValues}}
}

// tagsData is the tag browser template's .Data.
type tagsData struct {
	Path    string // the level shown, "" for the root
	Crumbs  []crumb
	Folders []folderRow
	Tags    []tagRow
	Total   int // rows at this level, folders and tags
	Page    int // 0-based
	Pages   int
	// Query filters every tag below Path by a substring of its path
	// (case-insensitive); the list is then flat.
	Query string
	// Stream is the pattern js/tags.js subscribes to.
	Stream   string
	NoValues bool
}

type crumb struct{ Name, Path string }

type folderRow struct {
	Name, Path string
	Count      int
}

type tagRow struct {
	Name, Path, Value, Quality, Reason, SourceTime, EdgeTime string
	Good                                                     bool
	// NoWrite hides "Write…": no policy lets this session write the tag.
	NoWrite   bool
	sourceRFC string
}

// level is one level of the namespace below prefix.
type level struct {
	folders []folderRow
	tags    []model.Sample
}

// browse splits the latest values at or below prefix into the folders and
// tags directly below it. Snapshot is sorted by path, so the folders come
// out sorted and each is one run.
func browse(samples []model.Sample, prefix string) level {
	var lv level
	base := prefix
	if base != "" {
		base += "/"
	}
	for _, s := range samples {
		if s.Path == prefix {
			lv.tags = append(lv.tags, s) // the level itself is a tag too
			continue
		}
		rest, ok := strings.CutPrefix(s.Path, base)
		if !ok || rest == "" {
			continue
		}
		name, _, deeper := strings.Cut(rest, "/")
		if !deeper {
			lv.tags = append(lv.tags, s)
			continue
		}
		if n := len(lv.folders); n > 0 && lv.folders[n-1].Name == name {
			lv.folders[n-1].Count++
			continue
		}
		lv.folders = append(lv.folders, folderRow{Name: name, Path: base + name, Count: 1})
	}
	return lv
}

func rfc3339(ns int64) string {
	if ns == 0 {
		return ""
	}
	return model.Time(ns).Format(time.RFC3339Nano)
}

// search keeps the tags whose path contains q (lower case), flat.
func search(samples []model.Sample, q string) level {
	var lv level
	for _, s := range samples {
		if strings.Contains(strings.ToLower(s.Path), q) {
			lv.tags = append(lv.tags, s)
		}
	}
	return lv
}

func cleanTagPath(p string) string {
	return strings.Trim(p, "/")
}

func (u *UI) tags(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.tagsPage(), u.tagsData(r))
}

func (u *UI) tagsData(r *http.Request) tagsData {
	prefix := cleanTagPath(r.URL.Query().Get("path"))
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	query := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(query) > 200 {
		query = query[:200]
	}
	d := tagsData{Path: prefix, Query: query}
	acc := ""
	for _, part := range strings.Split(prefix, "/") {
		if part == "" {
			continue
		}
		if acc != "" {
			acc += "/"
		}
		acc += part
		d.Crumbs = append(d.Crumbs, crumb{Name: part, Path: acc})
	}
	if u.opts.Values == nil {
		d.NoValues = true
		return d
	}
	var lv level
	if query != "" {
		lv = search(u.opts.Values.Snapshot(prefix), strings.ToLower(query))
	} else {
		lv = browse(u.opts.Values.Snapshot(prefix), prefix)
	}
	d.Total = len(lv.folders) + len(lv.tags)
	d.Pages = max(1, (d.Total+tagsPageSize-1)/tagsPageSize)
	d.Page = min(max(page, 0), d.Pages-1)
	from, to := d.Page*tagsPageSize, min(d.Total, (d.Page+1)*tagsPageSize)
	for i := from; i < to; i++ {
		if i < len(lv.folders) {
			d.Folders = append(d.Folders, lv.folders[i])
			continue
		}
		d.Tags = append(d.Tags, rowOf(lv.tags[i-len(lv.folders)], prefix))
	}
	if lookup := u.opts.WritePolicy; lookup != nil {
		s := SessionFrom(r.Context())
		for i := range d.Tags {
			ok, _ := lookup(d.Tags[i].Path).Allows("api:"+s.User, s.Role)
			d.Tags[i].NoWrite = !ok
		}
	}
	// Subscribe to what is on screen: every tag of the level when they all
	// fit on the page, else the page's tags one by one.
	switch {
	case len(d.Tags) == 0:
	case len(lv.tags) <= tagsPageSize && prefix != "" && query == "":
		d.Stream = prefix + "/+"
		if len(lv.tags) > 0 && lv.tags[0].Path == prefix {
			d.Stream = prefix + "," + d.Stream
		}
	default:
		paths := make([]string, len(d.Tags))
		for i, t := range d.Tags {
			paths[i] = t.Path
		}
		d.Stream = strings.Join(paths, ",")
	}
	return d
}

func rowOf(s model.Sample, prefix string) tagRow {
	name := strings.TrimPrefix(strings.TrimPrefix(s.Path, prefix), "/")
	if name == "" {
		name = s.Path
	}
	return tagRow{Name: name, Path: s.Path, Value: string(s.Value.AppendJSON(nil)), Quality: s.Quality.Code.String(),
		Reason: s.Quality.Reason, Good: s.Quality.IsGood(), SourceTime: stamp(s.SourceTime), EdgeTime: stamp(s.EdgeTime),
		sourceRFC: rfc3339(s.SourceTime)}
}

// tagValues answers the values of the tags of one page of the browser as
// JSON, for js/tags.js when GET /api/v1/stream is not available.
func (u *UI) tagValues(w http.ResponseWriter, r *http.Request) {
	d := u.tagsData(r)
	type item struct {
		Path       string          `json:"path"`
		Value      json.RawMessage `json:"value"`
		Quality    string          `json:"quality"`
		Reason     string          `json:"reason,omitempty"`
		SourceTime string          `json:"source_time,omitempty"`
	}
	out := make([]item, len(d.Tags))
	for i, t := range d.Tags {
		out[i] = item{Path: t.Path, Value: json.RawMessage(t.Value), Quality: t.Quality, Reason: t.Reason, SourceTime: t.sourceRFC}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Values []item `json:"values"`
	}{out})
}
