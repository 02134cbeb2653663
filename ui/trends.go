package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/weir-edge/weir/model"
)

// The Trends page: one chart of up to maxTrendTags tags, history from the
// historian (GET /api/v1/history, aggregates sized to the chart's width)
// with a live tail (GET /api/v1/stream); js/trend.js draws it with uPlot.
// Tags come from the URL (?tag=…, repeatable: the tag browser links here)
// or from the search box, which suggests paths of the latest-value store.

// Bounds of the trends page.
const (
	maxTrendTags    = 8  // series on one chart
	maxSuggestions  = 20 // paths the search box offers
	maxTrendQuery   = 200
	defaultTrendRng = "1h"
)

// trendRanges are the range picker's choices, in order.
var trendRanges = []string{"1h", "8h", "24h", "7d"}

func (u *UI) trendsPage() Page {
	return Page{Name: "trends", Title: "Trends", Path: "/ui/trends", Nav: true, Handler: u.trends,
		Scripts: []string{"vendor/uplot/uPlot.iife.min.js", "js/trend.js"},
		Styles:  []string{"vendor/uplot/uPlot.min.css", "css/pages.css"},
		Routes:  map[string]http.HandlerFunc{"GET /ui/trends/search": u.trendSearch}}
}

// trendsData is the page's .Data.
type trendsData struct {
	Tags   []trendTag
	Joined string // data-tags of the chart
	Range  string
	Ranges []string
	Full   bool // maxTrendTags reached
}

// trendTag is a chosen tag with the URL that removes it.
type trendTag struct {
	Path, Without string
}

// trendTags reads ?tag= (repeatable, or comma-separated), valid paths
// only, without repeats, at most maxTrendTags.
func trendTags(q url.Values) []string {
	var out []string
	for _, v := range q["tag"] {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" || model.ValidatePath(p) != nil || slices.Contains(out, p) {
				continue
			}
			if len(out) == maxTrendTags {
				return out
			}
			out = append(out, p)
		}
	}
	return out
}

// trendURL is the page's URL for tags and rng.
func trendURL(tags []string, rng string) string {
	q := url.Values{}
	for _, t := range tags {
		q.Add("tag", t)
	}
	if rng != "" && rng != defaultTrendRng {
		q.Set("range", rng)
	}
	if len(q) == 0 {
		return "/ui/trends"
	}
	return "/ui/trends?" + q.Encode()
}

func (u *UI) trends(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tags := trendTags(q)
	rng := q.Get("range")
	if !slices.Contains(trendRanges, rng) {
		rng = defaultTrendRng
	}
	d := trendsData{Joined: strings.Join(tags, ","), Range: rng, Ranges: trendRanges, Full: len(tags) >= maxTrendTags}
	for i, t := range tags {
		d.Tags = append(d.Tags, trendTag{Path: t, Without: trendURL(slices.Delete(slices.Clone(tags), i, i+1), rng)})
	}
	u.Render(w, r, u.trendsPage(), d)
}

// suggestData is the search fragment's.
type suggestData struct {
	Query    string
	Items    []trendTag // Path, and Without: the URL that adds it
	More     bool
	NoValues bool
}

// trendSearch answers the search box (htmx): tag paths containing every
// word of q, from the latest-value store, each linking to the chart with
// it added.
func (u *UI) trendSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	text := strings.TrimSpace(q.Get("q"))
	if len(text) > maxTrendQuery {
		text = text[:maxTrendQuery]
	}
	d := suggestData{Query: text}
	tags := trendTags(q)
	rng := q.Get("range")
	switch {
	case u.opts.Values == nil:
		d.NoValues = true
	case text != "":
		words := strings.Fields(strings.ToLower(text))
		for _, s := range u.opts.Values.Snapshot("") {
			if !matchWords(strings.ToLower(s.Path), words) || slices.Contains(tags, s.Path) {
				continue
			}
			if len(d.Items) == maxSuggestions {
				d.More = true
				break
			}
			d.Items = append(d.Items, trendTag{Path: s.Path, Without: trendURL(append(slices.Clone(tags), s.Path), rng)})
		}
	}
	u.RenderFragment(w, r, u.trendsPage(), "suggest", d)
}

func matchWords(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
