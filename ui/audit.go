package ui

import "net/http"

// The Audit page. A placeholder of the UI core: helper uipages owns this file
// and templates/audit.html and replaces both.

func (u *UI) auditPage() Page {
	return Page{Name: "audit", Title: "Audit", Path: "/ui/audit", Nav: true, Handler: u.audit}
}

func (u *UI) audit(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.auditPage(), nil)
}
