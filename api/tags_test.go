package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/latest"
)

type tagsPage struct {
	Prefix   string        `json:"prefix"`
	Children []tagNodeJSON `json:"children"`
	Total    int           `json:"total"`
	Next     string        `json:"next"`
}

// TestTagsPages walks a folder of 12,000 tags page by page: every child
// once, in order, with the cursor; folders count the tags below them.
func TestTagsPages(t *testing.T) {
	store := latest.New(0)
	const n = 12_000
	batch := make([]model.Sample, 0, n+3)
	for i := range n {
		batch = append(batch, model.Sample{Path: fmt.Sprintf("plant/l1/t%05d", i), Value: model.Int(int64(i))})
	}
	batch = append(batch,
		model.Sample{Path: "plant/l1/motor/speed", Value: model.Int(1)},
		model.Sample{Path: "plant/l1/motor/amps", Value: model.Float(2.5), Quality: model.Quality{Code: model.Uncertain, Reason: "stale"}},
		model.Sample{Path: "plant/l2/x", Value: model.Int(3)})
	store.Process(batch)
	h := New(Options{Status: &fakeStatus{}, Extra: (&Values{Store: store}).Mount}).Handler()
	get := func(t *testing.T, q url.Values) (int, tagsPage) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/tags?"+q.Encode(), nil))
		var p tagsPage
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
		}
		return rec.Code, p
	}

	code, root := get(t, url.Values{})
	if code != 200 || root.Total != 1 || len(root.Children) != 1 || root.Children[0].Path != "plant" || root.Children[0].Tags != n+3 || !root.Children[0].Folder || root.Next != "" {
		t.Fatalf("root: %d %+v", code, root)
	}
	var names []string
	after, pages := "", 0
	for {
		code, p := get(t, url.Values{"prefix": {"plant/l1/"}, "limit": {"1000"}, "after": {after}})
		if code != 200 || p.Total != n+1 {
			t.Fatalf("page %d: %d total %d", pages, code, p.Total)
		}
		for _, c := range p.Children {
			names = append(names, c.Name)
		}
		pages++
		if p.Next == "" {
			break
		}
		after = p.Next
		if pages > 20 {
			t.Fatal("no end")
		}
	}
	if pages != 13 || len(names) != n+1 || names[0] != "motor" || names[1] != "t00000" || names[n] != fmt.Sprintf("t%05d", n-1) {
		t.Fatalf("%d pages, %d names, first %v", pages, len(names), names[:2])
	}
	_, p := get(t, url.Values{"prefix": {"plant/l1"}, "limit": {"2"}})
	if len(p.Children) != 2 || p.Next != "t00000" {
		t.Fatalf("default page: %+v", p)
	}
	m, leaf := p.Children[0], p.Children[1]
	if !m.Folder || m.Tags != 2 || m.Value != nil || leaf.Folder || string(leaf.Value) != "0" || leaf.Quality != "good" {
		t.Fatalf("nodes %+v %+v", m, leaf)
	}
	_, p = get(t, url.Values{"prefix": {"plant/l1/motor"}})
	if len(p.Children) != 2 || p.Children[0].Name != "amps" || p.Children[0].Quality != "uncertain" || p.Children[0].Reason != "stale" {
		t.Fatalf("motor: %+v", p)
	}
	if _, p := get(t, url.Values{}); len(p.Children) != 1 {
		t.Fatal("default limit")
	}
	for _, q := range []url.Values{{"limit": {"0"}}, {"limit": {"1001"}}, {"limit": {"x"}}, {"prefix": {string(make([]byte, model.MaxPathLen+1))}}} {
		if code, _ := get(t, q); code != http.StatusBadRequest {
			t.Errorf("%v: %d, want 400", q, code)
		}
	}
}
