package ui

import (
	"net/http"

	"github.com/weir-edge/weir/security"
)

// The Configuration page: the running configuration (secrets shown as
// their references, as GET /api/v1/config gives them) in an editor with
// line numbers; Validate (POST /api/v1/config/validate) puts every error
// next to its line and shows the diff against the running text; Apply
// (POST /api/v1/config/apply) changes the running gateway by hot reload
// and says what restarted and what waits for a restart. Engineers only,
// as the configuration endpoints are (the text names every device and
// destination). js/config.js does the calls.

func (u *UI) configPage() Page {
	return Page{Name: "config", Title: "Config", Path: "/ui/config", Nav: true, Role: security.Engineer, Handler: u.config,
		Scripts: []string{"js/config.js"}, Styles: []string{"css/pages.css"}}
}

func (u *UI) config(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.configPage(), nil)
}
