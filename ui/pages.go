package ui

import (
	"bytes"
	"context"
	"net/http"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/security"
)

// Page is one page of the UI: a handler, its template file
// templates/<Name>.html, and its place in the navigation. Each page lives
// in its own file (overview.go, tags.go, trends.go, …) with a method that
// returns its Page; allPages lists them in navigation order.
type Page struct {
	// Name is the template file's base name and the nav's key.
	Name string
	// Title is shown in the navigation and the window title.
	Title string
	// Path is the page's URL ("/ui/tags"); "/ui/" is the overview.
	Path string
	// Nav puts the page in the navigation bar.
	Nav bool
	// Role is the least role that may open the page; "" is viewer. A page
	// for everybody hides the controls a role may not use (Session.Can),
	// and the API refuses them anyway.
	Role security.Role
	// Scripts and Styles are files under ui/static ("js/tags.js",
	// "vendor/uplot/uPlot.min.css") the layout includes for this page,
	// after htmx and js/weir.js.
	Scripts, Styles []string
	// Handler serves GET Path.
	Handler http.HandlerFunc
	// Routes are further routes of the page ("GET /ui/tags/rows"): htmx
	// fragments, form posts. They get the same session and role check.
	Routes map[string]http.HandlerFunc
}

// allPages lists the pages in navigation order. The last four (and write)
// belong to helper uipages: each is one file, trends.go, alarms.go, …
func (u *UI) allPages() []Page {
	return []Page{
		u.overviewPage(),
		u.flowsPage(),
		u.tagsPage(),
		u.trendsPage(),
		u.alarmsPage(),
		u.auditPage(),
		u.configPage(),
		u.writePage(),
	}
}

// Session is the logged-in user of a page request.
type Session struct {
	User string
	Role security.Role
	// CSRF is the token every unsafe request must carry (the layout puts
	// it in <meta name="csrf-token">; js/weir.js adds it to htmx and
	// weir.fetch requests).
	CSRF string
}

// Can reports whether the session's role includes role ("operator").
func (s Session) Can(role string) bool { return s.Role.Includes(security.Role(role)) }

type sessionKey struct{}

// SessionFrom returns the session of a page request (set by the page
// middleware).
func SessionFrom(ctx context.Context) Session {
	s, _ := ctx.Value(sessionKey{}).(Session)
	return s
}

// page wraps a page's handlers: it needs a browser session (a request
// authenticated otherwise, such as by a token, is sent to the login form)
// and the page's role.
func (u *UI) page(p Page, h http.HandlerFunc) http.Handler {
	need := p.Role
	if need == "" {
		need = security.Viewer
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := u.opts.Sessions.Session(r)
		if !ok {
			if r.Header.Get("HX-Request") != "" {
				w.Header().Set("HX-Redirect", "/ui/login")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		s := Session{User: info.User, Role: info.Role, CSRF: info.CSRF}
		if !info.Role.Includes(need) {
			w.WriteHeader(http.StatusForbidden)
			u.render(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)), p, "forbidden", nil)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// PageData is what the layout template gets; Data is the page's own.
type PageData struct {
	Page    Page
	Nav     []Page
	Session Session
	Node    string
	Version string
	Data    any
}

// Render executes the layout around the page's "content" template with
// data as .Data. The page's template file defines "content" and may
// define further templates for fragments (RenderFragment).
func (u *UI) Render(w http.ResponseWriter, r *http.Request, p Page, data any) {
	u.render(w, r, p, "layout", data)
}

// RenderFragment executes one named template of the page's file (an htmx
// fragment) with the same PageData.
func (u *UI) RenderFragment(w http.ResponseWriter, r *http.Request, p Page, name string, data any) {
	u.render(w, r, p, name, data)
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, p Page, name string, data any) {
	t := u.tmpl[p.Name]
	if t == nil {
		http.Error(w, "no such page", http.StatusNotFound)
		return
	}
	pd := PageData{Page: p, Session: SessionFrom(r.Context()), Node: u.opts.NodeID, Version: u.opts.Version, Data: data}
	// The navigation lists only the pages the session's role may open:
	// a viewer is not offered Config or Write to be refused there.
	for _, q := range u.pages {
		if q.Nav && (q.Role == "" || pd.Session.Role.Includes(q.Role)) {
			pd.Nav = append(pd.Nav, q)
		}
	}
	if name == "forbidden" {
		name, pd.Data = "layout", forbidden{}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, pd); err != nil {
		u.log.Error("ui: render", "page", p.Name, "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// forbidden makes the layout say that the role does not reach the page.
type forbidden struct{}

// Forbidden reports whether the page is shown only to say it is refused.
func (d PageData) Forbidden() bool { _, ok := d.Data.(forbidden); return ok }

// loginData is the login form's.
type loginData struct {
	Error string
	User  string
}

func (u *UI) loginPage() Page { return Page{Name: "login", Title: "Log in", Path: "/ui/login"} }

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := u.opts.Sessions.Session(r); ok {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	u.render(w, r, u.loginPage(), "layout", loginData{})
}

// login checks the form (a user and password, or a token) through the
// authenticator: its back-off, events and rate limit apply as to any
// request; nothing typed is echoed but the user name.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		u.render(w, r, u.loginPage(), "layout", loginData{Error: "The form could not be read."})
		return
	}
	user, pass, tok := r.PostForm.Get("user"), r.PostForm.Get("password"), r.PostForm.Get("token")
	cookie, d := u.opts.Sessions.Login(r, user, pass, tok)
	switch d.Outcome {
	case auth.OK:
		http.SetCookie(w, cookie)
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	case auth.Throttled:
		w.WriteHeader(http.StatusTooManyRequests)
		u.render(w, r, u.loginPage(), "layout", loginData{User: user, Error: "Too many failed attempts from this address; wait a minute and try again."})
	default:
		w.WriteHeader(http.StatusUnauthorized)
		u.render(w, r, u.loginPage(), "layout", loginData{User: user, Error: "Wrong user, password or token."})
	}
}

// logout ends the session; it is a POST with the CSRF token (htmx), and
// htmx follows HX-Redirect to the login form.
func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, u.opts.Sessions.Logout(r))
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", "/ui/login")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
