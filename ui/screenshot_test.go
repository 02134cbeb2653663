package ui_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-edge/weir/ui/uitest"
)

// TestScreenshots writes docs/screenshots/{overview,tags,tags-phone}.png
// (1280×800, and a phone) from a server with 10,000 tags. Behind
// WEIR_SCREENSHOTS=1: the pictures are committed, not made by every run.
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
	b.Screenshot(filepath.Join(dir, "overview.png"))
	b.Open(s.URL + "/ui/tags?path=plant/line1")
	b.Screenshot(filepath.Join(dir, "tags.png"))
	b.Open(s.URL + "/ui/tags?path=plant/area03/machine07")
	b.Screenshot(filepath.Join(dir, "tags-machine.png"))
	b.Viewport(390, 844, true)
	b.Open(s.URL + "/ui/tags?path=plant/line1")
	b.Screenshot(filepath.Join(dir, "tags-phone.png"))
	b.Open(s.URL + "/ui/")
	b.WaitFor(`document.querySelector('#sinks') !== null`)
	b.Screenshot(filepath.Join(dir, "overview-phone.png"))
	noCSPViolations(t, b)
}
