// Package uitest runs the web UI's tests in a real headless Chromium
// (Debian's /usr/bin/chromium, driven with chromedp): a Browser with a
// fresh profile per test, and a Server — the API with authentication, the
// latest-value store and the UI — on 127.0.0.1:0.
//
// Every wait is bounded by HangBound, so a broken page fails the test
// instead of hanging it. Without Chromium the tests skip with a message,
// unless WEIR_REQUIRE_PEERS=1 (make test sets it): then they fail.
package uitest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Chromium is where Debian's chromium package puts the browser.
const Chromium = "/usr/bin/chromium"

// HangBound bounds every browser action and wait: generous for a busy
// 2-core CI machine, finite so that a broken page fails.
const HangBound = 2 * time.Minute

// Width and Height are the viewport: the 1280×800 panel PC.
const (
	Width  = 1280
	Height = 800
)

// Browser is one headless Chromium with its own profile, and one tab.
type Browser struct {
	t   testing.TB
	ctx context.Context
}

// chromiumPath finds the browser: $WEIR_CHROMIUM, /usr/bin/chromium, or
// chromium on $PATH.
func chromiumPath() string {
	if p := os.Getenv("WEIR_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat(Chromium); err == nil {
		return Chromium
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// NewBrowser starts Chromium for t and stops it at the end of the test.
// It skips t when Chromium is missing, or fails it with
// WEIR_REQUIRE_PEERS=1.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	exe := chromiumPath()
	if exe == "" {
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatalf("chromium not found at %s (WEIR_REQUIRE_PEERS=1): apt-get install chromium, or run scripts/test-peers.sh", Chromium)
		}
		t.Skipf("chromium not found at %s: browser test skipped (apt-get install chromium; WEIR_REQUIRE_PEERS=1 makes this a failure)", Chromium)
	}
	profile := filepath.Join(t.TempDir(), "profile")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(Width, Height),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	// The first action starts the browser; it must run on the tab's own
	// context (a timeout there would end the browser), so the bound is a
	// timer beside it.
	started := make(chan error, 1)
	go func() {
		started <- chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			// Record what the CSP blocks on every page: the UI must have
			// no violation.
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder})
			return err
		}))
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium %s: %v", exe, err)
		}
	case <-time.After(HangBound):
		cancel()
		t.Fatalf("chromium %s did not start within %s", exe, HangBound)
	}
	b.Run(chromedp.EmulateViewport(Width, Height))
	return b
}

const cspRecorder = `window.__weirCSP = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__weirCSP.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber);
});`

// Context is the tab's chromedp context, for actions this package does
// not wrap; bound them yourself (context.WithTimeout(b.Context(), HangBound)).
func (b *Browser) Context() context.Context { return b.ctx }

// Run runs steps in the tab within HangBound and fails the test on an
// error.
func (b *Browser) Run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if _, err := Try(b, chromedp.Steps(steps...)); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Try runs an action within HangBound and returns its value and error.
func Try[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, HangBound)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %s: %w", HangBound, err)
	}
	return v, err
}

// Get runs an action that returns a value within HangBound; an error fails
// the test.
func Get[T any](b *Browser, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := Try(b, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// Eval evaluates a JavaScript expression in the page and returns its
// value (a promise is awaited).
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	v, err := Try(b, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// WaitFor polls a JavaScript expression until it is truthy, at most
// HangBound. A navigation while it waits (a form submitted, a redirect)
// starts the poll again in the new page.
func (b *Browser) WaitFor(expr string) {
	b.t.Helper()
	deadline := time.Now().Add(HangBound)
	for {
		left := time.Until(deadline)
		_, err := Try(b, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(left),
			chromedp.WithPollingInterval(20*time.Millisecond)))
		if err == nil {
			return
		}
		if !navigated(err) || left <= 0 {
			where, _ := Try(b, chromedp.Evaluate[string](`location.href + ' shows: ' + (document.body ? document.body.innerText.slice(0, 400) : '')`))
			b.t.Fatalf("browser: waiting for %s: %v\n(the page: %s)", expr, err, where)
		}
		// Let the new page's execution context appear; bounded by deadline.
		time.Sleep(20 * time.Millisecond)
	}
}

// navigated reports the errors of an evaluation cut short by navigation.
func navigated(err error) bool {
	s := err.Error()
	return strings.Contains(s, "navigated or closed") || strings.Contains(s, "context was destroyed") ||
		strings.Contains(s, "Cannot find context")
}

// Text returns the text content of the first element matching the CSS
// selector, waiting for it to exist.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(Get(b, chromedp.TextContent(chromedp.CSS(sel))))
}

// Open navigates to url and waits for the page to load.
func (b *Browser) Open(url string) {
	b.t.Helper()
	b.Run(chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body")))
}

// Login fills the login form of the UI at base with user and password and
// waits for either the logged-in header or the error; it returns the
// error shown ("" when logged in).
func (b *Browser) Login(base, user, password string) string {
	b.t.Helper()
	b.Open(base + "/ui/login")
	b.Run(chromedp.SendKeys(chromedp.CSS("#user-name"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")))
	return b.afterLogin()
}

// LoginToken logs in with an API token instead of a password.
func (b *Browser) LoginToken(base, token string) string {
	b.t.Helper()
	b.Open(base + "/ui/login")
	b.Run(chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-submit")))
	return b.afterLogin()
}

func (b *Browser) afterLogin() string {
	b.t.Helper()
	b.WaitFor(`document.readyState === 'complete' && (document.querySelector('#user') !== null || document.querySelector('#login-error') !== null)`)
	if Eval[bool](b, `document.querySelector('#user') !== null`) {
		return ""
	}
	return b.Text("#login-error")
}

// Logout presses the header's logout button and waits for the login form.
func (b *Browser) Logout() {
	b.t.Helper()
	b.Run(chromedp.Click(chromedp.CSS("#logout")))
	b.WaitFor(`location.pathname === '/ui/login' && document.querySelector('#login') !== null`)
}

// Viewport sets the size of the page; mobile emulates a phone (touch,
// device scale 2).
func (b *Browser) Viewport(width, height int64, mobile bool) {
	b.t.Helper()
	if mobile {
		b.Run(chromedp.EmulateViewport(width, height, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		return
	}
	b.Run(chromedp.EmulateViewport(width, height))
}

// CSPViolations returns what the page's Content-Security-Policy blocked
// since it loaded.
func (b *Browser) CSPViolations() []string {
	b.t.Helper()
	return Eval[[]string](b, `window.__weirCSP || []`)
}

// Screenshot saves what the viewport shows (Width×Height unless Viewport
// changed it) as a PNG.
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	png := Get(b, chromedp.CaptureScreenshot())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
