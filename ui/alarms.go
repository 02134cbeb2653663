package ui

import "net/http"

// The Alarms page: every alarm with its ISA-18.2 state (unacknowledged or
// acknowledged, active or returned to normal), shelving and priority,
// refreshed every two seconds from GET /api/v1/alarms by js/alarms.js.
// An operator acknowledges and shelves (for a duration) with a required
// comment, through POST /api/v1/alarms/{name}/ack|shelve|unshelve; a
// viewer sees no buttons, and the API refuses them anyway.

func (u *UI) alarmsPage() Page {
	return Page{Name: "alarms", Title: "Alarms", Path: "/ui/alarms", Nav: true, Handler: u.alarms,
		Scripts: []string{"js/alarms.js"}, Styles: []string{"css/pages.css"}}
}

func (u *UI) alarms(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.alarmsPage(), nil)
}
