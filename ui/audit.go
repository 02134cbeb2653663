package ui

import "net/http"

// The Audit page: the newest entries of the audit trail (GET
// /api/v1/audit, the last 1,000 the trail keeps in memory), filtered by
// actor, tag and outcome and shown 50 to a page, and the chain
// verification (GET /api/v1/audit/verify) on a button. js/audit.js does
// the calls; ?tag=, ?actor= and ?outcome= pre-fill the filters (the write
// page links here).

func (u *UI) auditPage() Page {
	return Page{Name: "audit", Title: "Audit", Path: "/ui/audit", Nav: true, Handler: u.audit,
		Scripts: []string{"js/audit.js"}, Styles: []string{"css/pages.css"}}
}

// auditData is the page's .Data: the filters from the URL.
type auditData struct {
	Actor, Tag, Outcome string
}

func (u *UI) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u.Render(w, r, u.auditPage(), auditData{Actor: clip(q.Get("actor")), Tag: clip(q.Get("tag")), Outcome: clip(q.Get("outcome"))})
}

// clip bounds a filter taken from the URL.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}
