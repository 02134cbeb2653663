package ui

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/writegate"
)

// The tag browser offers "Write…" only where the gate's policy lets the
// session's user and role write; without a lookup, on every tag.
func TestTagsWriteLinkFollowsPolicy(t *testing.T) {
	store := latest.New(0)
	store.Process([]model.Sample{{Path: "plant/speed", Value: model.Int(1)}, {Path: "plant/temp", Value: model.Int(2)},
		{Path: "plant/mode", Value: model.Int(3)}})
	policy := func(path string) writegate.PolicyView {
		switch path {
		case "plant/speed": // any caller
			return writegate.PolicyView{Path: path, Served: true, Writable: true, Policy: &writegate.PolicySummary{Allow: true}}
		case "plant/mode": // engineers only
			return writegate.PolicyView{Path: path, Served: true, Writable: true,
				Policy: &writegate.PolicySummary{Allow: true, Roles: []security.Role{security.Engineer}}}
		}
		return writegate.PolicyView{Path: path, Reason: "no policy allows writes to " + path}
	}
	for _, tc := range []struct {
		name   string
		lookup func(string) writegate.PolicyView
		want   string // the tags with the link, sorted
	}{
		{"no lookup", nil, "plant/mode plant/speed plant/temp"},
		{"policy", policy, "plant/speed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := New(Options{Sessions: fakeSessions{info: auth.SessionInfo{User: "op", Role: security.Operator}, ok: true},
				Values: store, WritePolicy: tc.lookup})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/ui/tags?path=plant", nil)
			rec := httptest.NewRecorder()
			u.page(u.tagsPage(), u.tags).ServeHTTP(rec, r)
			var got []string
			for _, row := range strings.Split(rec.Body.String(), "<tr data-tag=\"")[1:] {
				if strings.Contains(row, `class="write"`) {
					got = append(got, row[:strings.IndexByte(row, '"')])
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("write links on %v, want %s\n%s", got, tc.want, rec.Body.String())
			}
		})
	}
}
