package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/flows"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/writegate"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Sessions is what the UI asks of the authenticator: the login form's
// check, logout, and the session behind a request. *auth.Authenticator
// implements it.
type Sessions interface {
	Login(r *http.Request, user, password, token string) (*http.Cookie, auth.Decision)
	Logout(r *http.Request) *http.Cookie
	Session(r *http.Request) (auth.SessionInfo, bool)
}

var _ Sessions = (*auth.Authenticator)(nil)

// StatusSource is the engine's health, for the overview; *engine.Engine
// implements it.
type StatusSource interface {
	Status() engine.Status
}

// ValueStore is the latest value of every tag, for the tag browser;
// *latest.Store implements it.
type ValueStore interface {
	Snapshot(prefix string) []model.Sample
}

// Options are the UI's dependencies. Sessions is required; a page whose
// source is nil says so instead of failing.
type Options struct {
	Sessions Sessions
	Status   StatusSource
	Values   ValueStore
	NodeID   string
	Version  string
	Log      *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// WritePolicy is the write gate's policy lookup (writegate.Gate.Policy):
	// the tag browser offers "Write…" only on tags a policy lets the
	// session's user and role write. nil: on every tag (the write page
	// and the API decide).
	WritePolicy func(path string) writegate.PolicyView
	// Flows is the data-flow map for the Flows page; nil: the page says
	// there is none.
	Flows FlowMapper
	// Pages of helper uipages add their dependencies below this line.
}

// UI is the operator web UI. Build with New, then Mount on the API's mux.
type UI struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	pages   []Page
	tmpl    map[string]*template.Template // page name → layout + partials + its page file
	static  fs.FS
	version string // content hash of the static files, in their URLs
	rates   rates  // the overview's per-second rates
}

// New parses every template and hashes the static files; an error here is
// a programming error caught by the tests.
func New(opts Options) (*UI, error) {
	if opts.Sessions == nil {
		return nil, errors.New("ui: Options.Sessions is required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	u := &UI{opts: opts, log: opts.Log, now: opts.Now, static: st, tmpl: map[string]*template.Template{}}
	if u.version, err = hashFS(st); err != nil {
		return nil, err
	}
	u.pages = u.allPages()
	base, err := template.New("base").Funcs(u.funcs()).ParseFS(templateFS, "templates/_*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: templates: %w", err)
	}
	for _, p := range append(u.pages, Page{Name: "login"}) {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+p.Name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: template of page %s: %w", p.Name, err)
		}
		u.tmpl[p.Name] = t
	}
	return u, nil
}

// Mount registers the UI's routes. Authentication happens before them (the
// API's RequireAuth and its routeRoles rows for /ui/); the pages then need
// a browser session, for its CSRF token, and the role each page asks for.
func (u *UI) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /ui/static/", u.serveStatic)
	// No icon: 204, public (api's routeRoles), cached for a day, so a
	// browser's own request is neither a 404 nor an auth failure.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /ui/login", u.loginForm)
	mux.HandleFunc("POST /ui/login", u.login)
	mux.HandleFunc("POST /ui/logout", u.logout)
	for _, p := range u.pages {
		pattern := "GET " + p.Path
		if p.Path == "/ui/" {
			pattern = "GET /ui/{$}"
		}
		mux.Handle(pattern, u.page(p, p.Handler))
		for pat, h := range p.Routes {
			mux.Handle(pat, u.page(p, h))
		}
	}
}

// Static returns the URL of a file under ui/static ("js/tags.js"), with
// the content hash that lets browsers cache it for a year.
func (u *UI) Static(name string) string { return "/ui/static/" + u.version + "/" + name }

func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"static": u.Static,
		"stamp":  stamp,
		"ago":    func(ns int64) string { return ago(u.now(), ns) },
		"value":  func(v model.Value) string { return v.String() },
		"num":    num,
		"inc":    func(i int) int { return i + 1 },
		"rate":   rate,
		"bytes":  flows.ByteSize,
		"float":  func(n uint64) float64 { return float64(n) },
		"dec":    func(i int) int { return i - 1 },
	}
}

// serveStatic answers /ui/static/<version>/<file>. The current version is
// cached for a year (the URL changes with the content); another version
// (a page from before an upgrade) gets today's file, uncached.
func (u *UI) serveStatic(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/ui/static/")
	ver, name, ok := strings.Cut(rest, "/")
	if !ok || name == "" || strings.HasSuffix(name, "/") {
		http.NotFound(w, r)
		return
	}
	name = path.Clean(name)
	if !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(u.static, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if ver == u.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// hashFS is a short SHA-256 over every file's name and content.
func hashFS(f fs.FS) (string, error) {
	var names []string
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(f, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// rate writes a per-second rate: one decimal below 100.
func rate(v float64) string {
	if v >= 100 || v == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// num writes a count with thin spaces between thousands (12 345 678), as
// SI does: no locale decides between commas and points.
func num(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "\u202f" + s[i:]
	}
	return s
}

func stamp(ns int64) string {
	if ns == 0 {
		return ""
	}
	return model.Time(ns).Format("2006-01-02 15:04:05.000Z")
}

// ago says how long before now ns was, in the largest sensible unit.
func ago(now time.Time, ns int64) string {
	if ns == 0 {
		return "—"
	}
	d := now.Sub(model.Time(ns))
	switch {
	case d < 0:
		return "now"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%d d", int(d.Hours()/24))
}
