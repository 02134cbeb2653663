package ui

import "net/http"

// The Alarms page. A placeholder of the UI core: helper uipages owns this file
// and templates/alarms.html and replaces both.

func (u *UI) alarmsPage() Page {
	return Page{Name: "alarms", Title: "Alarms", Path: "/ui/alarms", Nav: true, Handler: u.alarms}
}

func (u *UI) alarms(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.alarmsPage(), nil)
}
