package ui

import "net/http"

// The Trends page. A placeholder of the UI core: helper uipages owns this file
// and templates/trends.html and replaces both.

func (u *UI) trendsPage() Page {
	return Page{Name: "trends", Title: "Trends", Path: "/ui/trends", Nav: true, Handler: u.trends}
}

func (u *UI) trends(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.trendsPage(), nil)
}
