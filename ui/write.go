package ui

import "net/http"

// The Write page. A placeholder of the UI core: helper uipages owns this file
// and templates/write.html and replaces both.

func (u *UI) writePage() Page {
	return Page{Name: "write", Title: "Write", Path: "/ui/write", Nav: false, Handler: u.write}
}

func (u *UI) write(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.writePage(), nil)
}
