package ui_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/gateway"
	"github.com/weir-edge/weir/ui/uitest"
)

// mosquitto is the broker the configuration test's connections use.
const mosquitto = "127.0.0.1:1883"

// gatewayConfig is a gateway with an MQTT source and an MQTT sink on the
// local broker, and an engineer who can log in.
const gatewayConfig = `node:
  id: ui-config-test
data_dir: %[1]s
http:
  listen: 127.0.0.1:0
auth:
  users:
    - {name: engineer, role: engineer, password_hash: "%[2]s"}
sources:
  - name: ingest
    mqtt:
      url: tcp://%[3]s
      client_id: weir-uitest-src-%[4]d
      subscriptions:
        - {topic: weir-uitest/%[4]d/#, path: "uitest/{2+}", format: raw}
sinks:
  - name: uns
    mqtt:
      url: tcp://%[3]s
      client_id: weir-uitest-sink-%[4]d
      topic_prefix: weir-uitest-out/%[4]d
`

// An engineer edits the configuration in the page, sees an error next to
// its line, fixes it, and applies: a second sink starts while the
// source's and the first sink's connections stay up (no new connect).
func TestBrowserConfigApply(t *testing.T) {
	if c, err := net.DialTimeout("tcp", mosquitto, time.Second); err != nil {
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatalf("mosquitto at %s: %v", mosquitto, err)
		}
		t.Skipf("mosquitto not reachable at %s: %v", mosquitto, err)
	} else {
		c.Close()
	}
	b := uitest.NewBrowser(t)
	dir := t.TempDir()
	hash, err := auth.HashPassword(uitest.Password)
	if err != nil {
		t.Fatal(err)
	}
	id := time.Now().UnixNano()
	text := fmt.Sprintf(gatewayConfig, filepath.Join(dir, "data"), hash, mosquitto, id)
	file := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(file, []byte(text), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), Listener: ln, ConfigPath: file, ConfigData: []byte(text)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway: %v", err)
			}
		case <-time.After(uitest.HangBound):
			t.Error("gateway did not stop")
		}
	})

	if msg := b.Login(base, "engineer", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	counter := func(name, key string) int {
		return uitest.Eval[int](b, fmt.Sprintf(`fetch('/status', {credentials: 'same-origin'}).then(function (r) { return r.json(); }).then(function (st) {
			var c = (st.components || []).filter(function (c) { return c.name === %q; })[0];
			return c && c.counters && c.counters[%q] !== undefined ? c.counters[%q] : -1;
		})`, name, key, key))
	}
	b.Open(base + "/ui/config")
	b.WaitFor(`document.querySelector('#cfg-text').value.includes('name: uns')`)
	// Both connections up before the change.
	b.WaitFor(`true`)
	deadline := time.Now().Add(uitest.HangBound)
	for counter("ingest", "connects") < 1 || counter("uns", "connects") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("connections not up: source %d, sink %d", counter("ingest", "connects"), counter("uns", "connects"))
		}
		time.Sleep(20 * time.Millisecond) // polling the status, bounded by deadline
	}
	srcBefore, sinkBefore := counter("ingest", "connects"), counter("uns", "connects")
	screenshot(t, b, "config")

	// An invalid edit: the error is shown next to its line, Apply stays off.
	added := fmt.Sprintf("  - name: uns2\n    mqtt:\n      url: tcp://%s\n      client_id: weir-uitest-sink2-%d\n      topic_prefix: weir-uitest-out2/%d\n", mosquitto, id, id)
	setText := func(s string) {
		uitest.Eval[bool](b, fmt.Sprintf(`var t = document.querySelector('#cfg-text'); t.value = %q; t.dispatchEvent(new Event('input')); true`, s))
	}
	running := uitest.Eval[string](b, `document.querySelector('#cfg-text').value`)
	setText(running + strings.Replace(added, "url:", "urll:", 1))
	b.Run(chromedp.Click(chromedp.CSS(`#cfg-validate`)))
	b.WaitFor(`!['', 'Validating…'].includes(document.querySelector('#cfg-state').textContent)`)
	if uitest.Eval[string](b, `document.querySelector('#cfg-state').dataset.valid || ''`) != "0" || !uitest.Eval[bool](b, `document.querySelector('#cfg-gutter .bad') !== null`) {
		t.Fatalf("an invalid configuration: state %q, errors %q", b.Text("#cfg-state"), uitest.Eval[string](b, `document.querySelector('#cfg-errors').textContent`))
	}
	if n := uitest.Eval[bool](b, `document.querySelector('#cfg-apply').disabled`); !n {
		t.Fatal("Apply is enabled for an invalid configuration")
	}
	errs := b.Text("#cfg-error-list")
	if !strings.Contains(errs, "urll") {
		t.Fatalf("errors shown: %q", errs)
	}
	screenshot(t, b, "config-invalid")

	// Fixed: valid, the diff shows the new sink, Apply changes the running gateway.
	setText(running + added)
	b.Run(chromedp.Click(chromedp.CSS(`#cfg-validate`)))
	b.WaitFor(`document.querySelector('#cfg-state').dataset.valid === '1' && !document.querySelector('#cfg-apply').disabled`)
	if d := b.Text("#cfg-diff"); !strings.Contains(d, "+  - name: uns2") {
		t.Fatalf("diff: %q", d)
	}
	b.Run(chromedp.Click(chromedp.CSS(`#cfg-apply`)))
	b.WaitFor(`document.querySelector('#cfg-applied') !== null`)
	if got := b.Text("#cfg-applied"); !strings.HasPrefix(got, "Applied.") {
		t.Fatalf("apply: %q", got)
	}
	// The new sink connects; the others did not reconnect.
	deadline = time.Now().Add(uitest.HangBound)
	for counter("uns2", "connects") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the new sink did not connect: %d", counter("uns2", "connects"))
		}
		time.Sleep(20 * time.Millisecond) // polling the status, bounded by deadline
	}
	if s, k := counter("ingest", "connects"), counter("uns", "connects"); s != srcBefore || k != sinkBefore {
		t.Fatalf("connects after the apply: source %d (was %d), sink %d (was %d)", s, srcBefore, k, sinkBefore)
	}
	// The editor shows the applied text as the running one.
	b.WaitFor(`document.querySelector('#cfg-text').value.includes('name: uns2') && document.querySelector('#cfg-running').textContent.includes('weir.yaml')`)
	noCSPViolations(t, b)
}

// testLog sends the gateway's warnings and errors to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
