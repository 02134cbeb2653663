package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/weir-edge/weir/ui/uitest"
)

// The demo opens with the UI: in headless Chromium, the printed address
// and login get in, the overview shows the simulated line's source and
// sink running with samples flowing, and the tag browser shows the line's
// tags with values that change without a reload. With WEIR_SCREENSHOTS=1
// it writes docs/screenshots/{overview,tags}.png (1280×800) and the
// phone's.
func TestDemoWebUI(t *testing.T) {
	b := uitest.NewBrowser(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runNamed(ctx, "run", []string{"--http-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0",
			"--sim-listen", "127.0.0.1:0", "--log-level", "warn"}, &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v\n%s", err, errOut.String())
		}
	})
	dir := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "weir", "demo")
	waitFile(t, filepath.Join(dir, apiAddrFile), done)
	m := regexp.MustCompile(`web UI +(http://\S+)/ui/ +user (\S+), password (\S+) `).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no web UI line:\n%s", out.String())
	}
	base, user, password := m[1], m[2], m[3]

	if msg := b.Login(base, user, password); msg != "" {
		t.Fatalf("the printed login: %q", msg)
	}
	// Samples flow: the overview's refresh shows a rate above zero.
	b.WaitFor(`document.querySelector('#sources') !== null && document.querySelector('#sources').textContent.includes('running') &&
		document.querySelector('#rate') !== null && document.querySelector('#rate').textContent !== '0/s'`)
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("CSP violations: %v", v)
	}
	shots := os.Getenv("WEIR_SCREENSHOTS") == "1"
	shotDir := filepath.Join("..", "..", "..", "docs", "screenshots")
	if shots {
		b.Screenshot(filepath.Join(shotDir, "overview.png"))
	}
	b.Open(base + "/ui/tags?path=" + demoNamespace)
	b.WaitFor(`document.querySelectorAll('tr[data-tag]').length > 3`)
	// A value changes on the page without a reload (the line runs).
	uitest.Eval[bool](b, `(function () {
  window.__stay = true;
  window.__before = Array.from(document.querySelectorAll('tr[data-tag] .v')).map(function (c) { return c.textContent; });
  return true;
})()`)
	b.WaitFor(`window.__stay === true && Array.from(document.querySelectorAll('tr[data-tag] .v')).some(function (c, i) { return c.textContent !== window.__before[i]; })`)
	if shots {
		b.Screenshot(filepath.Join(shotDir, "tags.png"))
		b.Viewport(390, 844, true)
		b.Open(base + "/ui/tags?path=" + demoNamespace)
		b.Screenshot(filepath.Join(shotDir, "tags-phone.png"))
		b.Open(base + "/ui/")
		b.WaitFor(`document.querySelector('#sinks') !== null`)
		b.Screenshot(filepath.Join(shotDir, "overview-phone.png"))
	}
	b.Logout()
}
