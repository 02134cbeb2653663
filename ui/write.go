package ui

import (
	"net/http"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

// The Write page: write a setpoint through the write gate. It shows the
// policy that applies to the tag (GET /api/v1/write/policy) before
// anything is sent, requires a reason, sends POST /api/v1/write and shows
// the result and the audit entry the attempt produced, read back from GET
// /api/v1/audit. Operators only: a viewer gets the "not allowed" page and
// no form (and the API refuses the write anyway). js/write.js does the
// calls.

func (u *UI) writePage() Page {
	return Page{Name: "write", Title: "Write", Path: "/ui/write", Nav: false, Role: security.Operator, Handler: u.write,
		Scripts: []string{"js/write.js"}, Styles: []string{"css/pages.css"}}
}

// writeData is the page's .Data.
type writeData struct {
	Tag     string
	Current string // the latest value, when the store has it
	Quality string
}

func (u *UI) write(w http.ResponseWriter, r *http.Request) {
	tag := r.URL.Query().Get("tag")
	if model.ValidatePath(tag) != nil {
		tag = ""
	}
	d := writeData{Tag: tag}
	if tag != "" && u.opts.Values != nil {
		for _, s := range u.opts.Values.Snapshot(tag) {
			if s.Path == tag {
				d.Current, d.Quality = s.Value.String(), s.Quality.Code.String()
				break
			}
		}
	}
	u.Render(w, r, u.writePage(), d)
}
