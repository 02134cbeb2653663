package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

// Each page of helper uipages opens for the roles it is meant for, says
// "not allowed" to the others, and offers controls only to those who may
// use them.
func TestPagesByRole(t *testing.T) {
	r := newRig(t)
	type want struct {
		code     int
		has, not []string
	}
	tests := []struct {
		page string
		role security.Role
		want want
	}{
		{"/ui/trends?tag=plant/line1/speed&tag=plant/line2/speed&range=8h", security.Viewer, want{200,
			[]string{`data-tags="plant/line1/speed,plant/line2/speed"`, `data-range="8h"`, `data-trend-range="7d"`, "uPlot.iife.min.js", "js/trend.js"}, nil}},
		{"/ui/trends", security.Viewer, want{200, []string{`id="trend-empty"`}, []string{`id="chart"`}}},
		{"/ui/alarms", security.Viewer, want{200, []string{`id="alarms"`, `data-operator=""`}, []string{`id="alarm-dialog"`}}},
		{"/ui/alarms", security.Operator, want{200, []string{`data-operator="1"`, `id="alarm-dialog"`, "Comment (required)"}, nil}},
		{"/ui/write?tag=plant/line1/speed", security.Viewer, want{403, []string{"Not allowed"}, []string{`id="write-form"`}}},
		{"/ui/write?tag=plant/line1/speed", security.Operator, want{200, []string{`id="write-form"`, `value="plant/line1/speed"`, "21.5", "Reason (required"}, nil}},
		{"/ui/audit?tag=plant&outcome=denied", security.Viewer, want{200, []string{`id="verify"`, `id="f-tag" value="plant"`, `data-value="denied"`}, nil}},
		{"/ui/config", security.Operator, want{403, []string{"Not allowed"}, []string{`id="cfg-text"`}}},
		{"/ui/config", security.Engineer, want{200, []string{`id="cfg-text"`, `id="cfg-apply"`, "js/config.js"}, nil}},
		// The navigation offers only the pages the role may open.
		{"/ui/tags", security.Operator, want{200, []string{`href="/ui/alarms"`, `href="/ui/audit"`}, []string{`href="/ui/config"`}}},
		{"/ui/tags", security.Engineer, want{200, []string{`href="/ui/config"`}, nil}},
	}
	for _, tc := range tests {
		t.Run(string(tc.role)+" "+tc.page, func(t *testing.T) {
			c := r.client(t)
			r.login(t, c, url.Values{"token": {r.tokens[tc.role]}})
			resp, body := get(t, c, r.srv.URL+tc.page)
			if resp.StatusCode != tc.want.code {
				t.Fatalf("%d, want %d", resp.StatusCode, tc.want.code)
			}
			for _, s := range tc.want.has {
				if !strings.Contains(body, s) {
					t.Errorf("lacks %q", s)
				}
			}
			for _, s := range tc.want.not {
				if strings.Contains(body, s) {
					t.Errorf("has %q", s)
				}
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
				t.Error("inline script or style (the CSP forbids them)")
			}
		})
	}
}

func TestTrendTags(t *testing.T) {
	tests := []struct {
		query string
		want  []string
	}{
		{"tag=a/b&tag=c", []string{"a/b", "c"}},
		{"tag=a/b,c/d&tag=a/b", []string{"a/b", "c/d"}},
		{"tag=a//b&tag=&tag=ok", []string{"ok"}},
		{"tag=1,2,3,4,5,6,7,8,9,10", []string{"1", "2", "3", "4", "5", "6", "7", "8"}},
	}
	for _, tc := range tests {
		q, _ := url.ParseQuery(tc.query)
		if got := trendTags(q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
		}
	}
}

// The search box finds tags among 10,000 by the words typed, offers at
// most maxSuggestions, and links each to the chart with it added.
func TestTrendSearch(t *testing.T) {
	r := newRig(t)
	var batch []model.Sample
	for i := range 10_000 {
		batch = append(batch, model.Sample{Path: fmt.Sprintf("big/line%d/t%05d", i%10, i), Value: model.Int(int64(i))})
	}
	r.store.Process(batch)
	c := r.client(t)
	r.login(t, c, url.Values{"token": {r.tokens[security.Viewer]}})
	search := func(q string) string {
		resp, body := get(t, c, r.srv.URL+"/ui/trends/search?tag=plant/line1/speed&"+q)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", q, resp.StatusCode)
		}
		return body
	}
	body := search("q=" + url.QueryEscape("LINE3 t0000"))
	if n := strings.Count(body, "<li><a "); n != 1 || !strings.Contains(body, `href="/ui/trends?tag=plant%2Fline1%2Fspeed&amp;tag=big%2Fline3%2Ft00003"`) {
		t.Fatalf("%d suggestions:\n%s", n, body)
	}
	body = search("q=line")
	if n := strings.Count(body, "<li><a "); n != maxSuggestions || !strings.Contains(body, "more…") {
		t.Fatalf("%d suggestions, want %d and more", n, maxSuggestions)
	}
	if body = search("q=speed"); strings.Contains(body, ">plant/line1/speed<") || !strings.Contains(body, ">plant/line2/speed<") {
		t.Fatalf("a chosen tag is offered again, or another is not:\n%s", body)
	}
	if body = search("q=nothing-like-this"); !strings.Contains(body, "No tag matches") {
		t.Fatalf("%s", body)
	}
}

// A browser's own GET /favicon.ico, without a session, is answered 204:
// no redirect to the login form, no authentication failure.
func TestFavicon(t *testing.T) {
	r := newRig(t)
	resp, _ := get(t, r.client(t), r.srv.URL+"/favicon.ico")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("GET /favicon.ico: %d, want 204", resp.StatusCode)
	}
}
