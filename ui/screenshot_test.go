package ui_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-edge/weir/ui/uitest"
)

// TestScreenshots writes docs/screenshots/overview-faults.png (a sink
// retrying with a backlog) and tags-10k.png (a machine of a 10,000-tag
// store) at 1280×800. Behind WEIR_SCREENSHOTS=1: the pictures are
// committed, not made by every run. The demo's own screenshots come from
// cmd/weir/cli's TestDemoWebUI.
func TestScreenshots(t *testing.T) {
	if os.Getenv("WEIR_SCREENSHOTS") != "1" {
		t.Skip("writes docs/screenshots: WEIR_SCREENSHOTS=1")
	}
	dir := filepath.Join("..", "docs", "screenshots")
	b := uitest.NewBrowser(t)
	s := uitest.StartServer(t, uitest.ServerOptions{})
	tenThousand(s)
	plant(s)
	if msg := b.Login(s.URL, "operator", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(s.URL + "/ui/")
	b.WaitFor(`document.querySelector('#sinks') !== null`)
	b.Screenshot(filepath.Join(dir, "overview-faults.png"))
	b.Open(s.URL + "/ui/tags?path=plant/area03/machine07")
	b.Screenshot(filepath.Join(dir, "tags-10k.png"))
	noCSPViolations(t, b)
}
