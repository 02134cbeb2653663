package ui

import "net/http"

// The Config page. A placeholder of the UI core: helper uipages owns this file
// and templates/config.html and replaces both.

func (u *UI) configPage() Page {
	return Page{Name: "config", Title: "Config", Path: "/ui/config", Nav: true, Handler: u.config}
}

func (u *UI) config(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.configPage(), nil)
}
