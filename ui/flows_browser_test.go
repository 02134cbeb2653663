package ui_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/flows"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/ui"
	"github.com/weir-edge/weir/ui/uitest"
)

// flowEngine is an engine status whose counters a test moves.
type flowEngine struct {
	mu                        sync.Mutex
	samples, written, denied  uint64
	routeIn, filtered, wireBy uint64
}

func (f *flowEngine) Status() engine.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return engine.Status{Emitted: f.samples, Components: []engine.ComponentStatus{
		{Kind: "source", Status: pipeline.Status{Name: "plc1", State: "running", Counters: map[string]uint64{"samples": f.samples}}, Up: true},
		{Kind: "sink", Status: pipeline.Status{Name: "cloud", State: "running", Counters: map[string]uint64{
			"route_in_samples": f.routeIn, "route_filtered_samples": f.filtered, "route_denied_samples": f.denied,
			"samples_written": f.written, "wire_bytes": f.wireBy}}, Up: true, Buffer: &buffer.Stats{Capacity: 100}},
	}}
}

func (f *flowEngine) add(samples uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples += samples
	f.routeIn += samples
	f.filtered += samples / 2
	f.written += samples / 2
	f.wireBy += 40 * samples
}

// The Flows page shows the map and keeps it current (htmx, every 3 s):
// a sink's rate and a denied count appear without a reload, at 1280×800
// and on a phone, within the page's CSP.
func TestBrowserFlows(t *testing.T) {
	b := uitest.NewBrowser(t)
	eng := &flowEngine{}
	sampler := flows.New(flows.Options{Status: eng.Status, Interval: 200 * time.Millisecond, Node: "gw1",
		Topology: func() flows.Topology {
			return flows.Topology{Sources: []flows.SourceInfo{{Name: "plc1", Kind: "modbus"}}, Chain: []string{"rules"},
				Sinks: []flows.SinkInfo{{Name: "cloud", Kind: "kafka", MaxClass: "public",
					Route: flows.Route{Include: []string{"plant/+/temp"}, Quality: "good", Processors: []string{"window"}}}}}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(2)
	go func() { defer wg.Done(); _ = sampler.Run(ctx) }()
	go func() { // the plant: 100 samples every 100 ms until the test ends
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				eng.add(100)
			}
		}
	}()
	s := uitest.StartServer(t, uitest.ServerOptions{UI: func(o *ui.Options) { o.Flows = sampler }})
	if msg := b.Login(s.URL, "viewer", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(s.URL + "/ui/flows")
	if got := b.Text("#sink-cloud .route"); got == "" {
		t.Fatal("no route shown for sink cloud")
	}
	uitest.Eval[bool](b, `window.__stay = true`)
	b.WaitFor(`(function () { var v = document.querySelector('#sink-cloud .sent'); return v !== null && parseFloat(v.textContent) > 0; })()`)
	eng.mu.Lock()
	eng.denied = 7
	eng.mu.Unlock()
	b.WaitFor(`(function () { var v = document.querySelector('#sink-cloud .denied'); return v !== null && v.textContent === '7' &&
		v.parentElement.classList.contains('denied-some'); })()`)
	if !uitest.Eval[bool](b, `window.__stay === true`) {
		t.Error("the page reloaded instead of refreshing its map")
	}
	for _, want := range []struct{ css, text string }{{"#source-plc1 .muted", "modbus"}, {"#sink-cloud .class", "≤ public"}} {
		if got := b.Text(want.css); got != want.text {
			t.Errorf("%s shows %q, want %q", want.css, got, want.text)
		}
	}
	fits := `document.documentElement.scrollWidth <= window.innerWidth + 1`
	if !uitest.Eval[bool](b, fits) {
		t.Error("at 1280×800 the page scrolls sideways")
	}
	// Pictures for docs/screenshots, committed: WEIR_SCREENSHOTS=1.
	shots := os.Getenv("WEIR_SCREENSHOTS") == "1"
	if shots {
		b.Screenshot(filepath.Join("..", "docs", "screenshots", "flows.png"))
	}
	b.Viewport(390, 844, true)
	b.Open(s.URL + "/ui/flows")
	b.WaitFor(`document.querySelector('#sink-cloud .denied') !== null && document.querySelector('#sink-cloud .denied').textContent === '7'`)
	if !uitest.Eval[bool](b, fits) {
		t.Error("on a phone the page scrolls sideways")
	}
	if shots {
		b.Screenshot(filepath.Join("..", "docs", "screenshots", "flows-phone.png"))
	}
	noCSPViolations(t, b)
}
