package ui_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/ui/uitest"
)

// plant fills the latest-value store with a few tags.
func plant(s *uitest.Server) {
	now := time.Now().UnixNano()
	s.Values.Process([]model.Sample{
		{Path: "plant/line1/speed", Value: model.Float(21.5), SourceTime: now, EdgeTime: now},
		{Path: "plant/line1/temp", Value: model.Int(70), SourceTime: now, EdgeTime: now},
		{Path: "plant/line1/state", Value: model.String("running"), SourceTime: now, EdgeTime: now},
		{Path: "plant/line2/speed", Value: model.Float(3), SourceTime: now, EdgeTime: now,
			Quality: model.Quality{Code: model.Bad, Reason: "device offline"}},
	})
}

func noCSPViolations(t *testing.T, b *uitest.Browser) {
	t.Helper()
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("the page broke its Content-Security-Policy: %v", v)
	}
}

func TestBrowserLogin(t *testing.T) {
	b := uitest.NewBrowser(t)
	s := uitest.StartServer(t, uitest.ServerOptions{})
	b.Open(s.URL + "/")
	if got := uitest.Eval[string](b, `location.pathname`); got != "/ui/login" {
		t.Fatalf("/ without a session shows %s, want the login form", got)
	}
	if msg := b.Login(s.URL, "operator", "wrong password"); !strings.Contains(msg, "Wrong user") {
		t.Fatalf("a wrong password: %q", msg)
	}
	if msg := b.Login(s.URL, "operator", uitest.Password); msg != "" {
		t.Fatalf("the right password: %q", msg)
	}
	if u, r := b.Text("#user"), b.Text("#role"); u != "operator" || r != "operator" {
		t.Fatalf("header shows %q %q", u, r)
	}
	b.WaitFor(`document.querySelector('#sinks') !== null && document.querySelector('#sinks').textContent.includes('historian-pg')`)
	// The overview refreshes itself (htmx, every 2 s) without reloading.
	uitest.Eval[bool](b, `window.__stay = true; document.querySelector('#ready').dataset.old = '1'; true`)
	b.WaitFor(`window.__stay === true && document.querySelector('#ready') !== null && document.querySelector('#ready').dataset.old === undefined`)
	noCSPViolations(t, b)
	b.Open(s.URL + "/ui/tags")
	noCSPViolations(t, b)
	b.Logout()
	b.Open(s.URL + "/ui/tags")
	if got := uitest.Eval[string](b, `location.pathname`); got != "/ui/login" {
		t.Fatalf("after logout /ui/tags shows %s", got)
	}
	// A token pasted into the form logs in too.
	if msg := b.LoginToken(s.URL, s.Tokens[security.Viewer]); msg != "" || b.Text("#role") != "viewer" {
		t.Fatalf("token login: %q", msg)
	}
}

// A value changes on the page without a reload.
func TestBrowserLiveValue(t *testing.T) {
	b := uitest.NewBrowser(t)
	s := uitest.StartServer(t, uitest.ServerOptions{})
	plant(s)
	if msg := b.Login(s.URL, "viewer", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(s.URL + "/ui/tags?path=plant/line1")
	cell := `document.querySelector('tr[data-tag="plant/line1/speed"] .v')`
	if got := b.Text(`tr[data-tag="plant/line1/speed"] .v`); got != "21.5" {
		t.Fatalf("first value %q", got)
	}
	uitest.Eval[bool](b, `window.__stay = true`)
	for i, v := range []float64{22.25, 23.5, -1} {
		now := time.Now().UnixNano()
		s.Values.Process([]model.Sample{{Path: "plant/line1/speed", Value: model.Float(v), SourceTime: now, EdgeTime: now}})
		b.WaitFor(fmt.Sprintf(`%s.textContent === %q`, cell, fmt.Sprint(v)))
		if !uitest.Eval[bool](b, `window.__stay === true`) {
			t.Fatalf("update %d reloaded the page", i)
		}
	}
	// Quality and time follow.
	now := time.Now().UnixNano()
	s.Values.Process([]model.Sample{{Path: "plant/line1/temp", Value: model.Int(71), SourceTime: now, EdgeTime: now,
		Quality: model.Quality{Code: model.Bad, Reason: "sensor broken"}}})
	b.WaitFor(`document.querySelector('tr[data-tag="plant/line1/temp"] .q').textContent === 'bad'`)
	noCSPViolations(t, b)
}

// A viewer sees no write control, and the API refuses a write sent from
// the page's own script (with the session cookie and CSRF token) with 403;
// an operator gets both.
func TestBrowserViewerCannotWrite(t *testing.T) {
	b := uitest.NewBrowser(t)
	s := uitest.StartServer(t, uitest.ServerOptions{})
	plant(s)
	write := `weir.api('POST', '/api/v1/write', {path: 'plant/line1/speed', value: 30, reason: 'browser test'}).then(function (r) { return r.status; })`

	if msg := b.Login(s.URL, "viewer", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(s.URL + "/ui/tags?path=plant/line1")
	if n := uitest.Eval[int](b, `document.querySelectorAll('a.write').length`); n != 0 {
		t.Fatalf("a viewer sees %d write controls", n)
	}
	if code := uitest.Eval[int](b, write); code != http.StatusForbidden {
		t.Fatalf("a viewer's write: %d, want 403", code)
	}
	// Without the CSRF token even a permitted role is refused.
	b.Logout()
	if msg := b.Login(s.URL, "operator", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(s.URL + "/ui/tags?path=plant/line1")
	if n := uitest.Eval[int](b, `document.querySelectorAll('a.write').length`); n != 3 {
		t.Fatalf("an operator sees %d write controls, want 3", n)
	}
	noCSRF := `fetch('/api/v1/write', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({path: 'plant/line1/speed', value: 30, reason: 'x'})}).then(function (r) { return r.status; })`
	if code := uitest.Eval[int](b, noCSRF); code != http.StatusForbidden {
		t.Fatalf("a write without the CSRF token: %d, want 403", code)
	}
	if code := uitest.Eval[int](b, write); code != http.StatusOK {
		t.Fatalf("an operator's write: %d, want 200", code)
	}
	if w := s.Writes(); len(w) != 1 || w[0].Caller != "api:operator" || w[0].Role != security.Operator {
		t.Fatalf("the gate got %+v", w)
	}
}

// A session that ends while a page is open (here: its token is revoked)
// takes the page to the login form at the overview's next refresh (htmx
// follows HX-Redirect), instead of leaving stale figures on screen.
func TestBrowserSessionEndRedirects(t *testing.T) {
	b := uitest.NewBrowser(t)
	s := uitest.StartServer(t, uitest.ServerOptions{})
	tok, info, err := s.Auth.Tokens().Create("night-shift", security.Viewer, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if msg := b.LoginToken(s.URL, tok); msg != "" {
		t.Fatal(msg)
	}
	b.Open(s.URL + "/ui/")
	b.WaitFor(`document.querySelector('#sinks') !== null`)
	if _, err := s.Auth.Tokens().Revoke(info.ID); err != nil {
		t.Fatal(err)
	}
	b.WaitFor(`location.pathname === '/ui/login' && document.querySelector('#login') !== null`)
}

// A stopped gateway never leaves current-looking figures on screen: the
// overview and the flows map (htmx refresh) and the tag browser (live stream) show the
// "connection lost" banner and grey out their values.
func TestBrowserConnectionLost(t *testing.T) {
	for _, page := range []struct{ name, path, stale string }{
		{"overview", "/ui/", `document.querySelector('#sinks') !== null`},
		{"tags", "/ui/tags?path=plant/line1", `document.querySelectorAll('tr[data-tag].stale').length === 3`},
		{"flows", "/ui/flows", `document.querySelector('#flowmap') !== null`},
	} {
		t.Run(page.name, func(t *testing.T) {
			b := uitest.NewBrowser(t)
			s := uitest.StartServer(t, uitest.ServerOptions{})
			plant(s)
			if msg := b.Login(s.URL, "viewer", uitest.Password); msg != "" {
				t.Fatal(msg)
			}
			b.Open(s.URL + page.path)
			b.WaitFor(`document.readyState === 'complete' && window.weir !== undefined`)
			if uitest.Eval[bool](b, `document.body.classList.contains('stale')`) {
				t.Fatal("stale before the server stopped")
			}
			if page.name == "tags" {
				// The stream is open: a new value arrives live.
				now := time.Now().UnixNano()
				s.Values.Process([]model.Sample{{Path: "plant/line1/speed", Value: model.Float(99), SourceTime: now, EdgeTime: now}})
				b.WaitFor(`document.querySelector('tr[data-tag="plant/line1/speed"] .v').textContent === '99'`)
			}
			s.Stop()
			b.WaitFor(`(function () { var b = document.getElementById('conn-lost'); return b !== null && !b.hidden &&
				/Connection lost .* data as of \d\d:\d\d:\d\d/.test(b.textContent) && document.body.classList.contains('stale'); })()`)
			b.WaitFor(page.stale)
			noCSPViolations(t, b)
		})
	}
}
