package ui_test

import (
	"context"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/sinks/historian"
	"github.com/weir-edge/weir/ui/uitest"
	"github.com/weir-edge/weir/writegate"
)

// sineHistory is a historian that has a sine wave for every tag, at every
// time: what a chart needs, without a database.
type sineHistory struct{}

func (sineHistory) Raw(_ context.Context, path string, from, to int64, limit int) ([]model.Sample, error) {
	var out []model.Sample
	for t := from; t < to && len(out) < limit; t += int64(10 * time.Second) {
		out = append(out, model.Sample{Path: path, Value: model.Float(sine(t)), SourceTime: t})
	}
	return out, nil
}

func (sineHistory) Aggregate(_ context.Context, path string, from, to, interval int64) ([]historian.Bucket, error) {
	var out []historian.Bucket
	shift := int64(len(path)) * int64(time.Minute) // tags of different names differ
	for t := from - from%interval; t < to; t += interval {
		v := sine(t+shift) + float64(len(path)%7)
		out = append(out, historian.Bucket{Start: t, Count: 1, Min: v, Max: v, Mean: v, First: v, Last: v, TWMean: v})
	}
	return out, nil
}

func sine(ns int64) float64 { return 50 + 20*math.Sin(float64(ns)/float64(10*time.Minute)) }

// rig is a uitest.Server with the pages' dependencies: a write gate
// with a policy and an audit trail, alarms, history.
type pagesRig struct {
	s      *uitest.Server
	trail  *audit.Log
	alarms *alarms.Manager
	writer *okWriter
}

type okWriter struct {
	mu   sync.Mutex
	last model.Value
}

func (w *okWriter) WriteTag(_ context.Context, _ string, v model.Value) (model.Value, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.last
	if old.Kind() == model.KindInvalid {
		old = model.Float(21.5)
	}
	w.last = v
	return old, nil
}

func newPagesRig(t *testing.T) *pagesRig {
	t.Helper()
	dir := t.TempDir()
	trail, err := audit.OpenWith(audit.Config{File: filepath.Join(dir, "audit.jsonl"), CheckpointFile: filepath.Join(dir, "cp", "checkpoint.json")},
		audit.Options{DataDir: dir, Node: "test-gw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	gate, err := writegate.New(writegate.Config{Policies: []writegate.Policy{
		{Match: "plant/+/speed", Allow: true, Roles: []security.Role{security.Operator}, Type: "float", Min: new(0.0), Max: new(100.0), MaxRate: "60/min"},
	}}, trail, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &okWriter{}
	if err := gate.Register("plant", w); err != nil {
		t.Fatal(err)
	}
	events := audit.NewEventRecorder(trail, 0, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = events.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	m, err := alarms.New(alarms.Config{}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []alarms.Def{
		{Name: "line1_overtemp", Priority: alarms.High, Message: "oven zone 3 above 240 °C"},
		{Name: "line2_jam", Priority: alarms.Critical, Message: "conveyor jam at infeed"},
		{Name: "line1_low_air", Priority: alarms.Medium, Message: "compressed air below 5.5 bar"},
		{Name: "line3_door", Priority: alarms.Low, Message: "guard door open"},
	} {
		if err := m.Define(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"line1_overtemp", "line2_jam", "line1_low_air"} {
		if _, err := m.Raise(n, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	s := uitest.StartServer(t, uitest.ServerOptions{Gate: gate, Audit: trail, Events: events, Extra: func(mux *http.ServeMux) {
		(&api.WritePolicy{Gate: gate}).Mount(mux)
		(&api.AuditVerify{Trail: trail}).Mount(mux)
		(&api.Alarms{Store: m, Events: events}).Mount(mux)
		(&api.History{Store: sineHistory{}}).Mount(mux)
	}})
	plant(s)
	return &pagesRig{s: s, trail: trail, alarms: m, writer: w}
}

// screenshot saves the page under docs/screenshots/ when
// WEIR_SCREENSHOTS=1 (1280×800, the harness's viewport).
func screenshot(t *testing.T, b *uitest.Browser, name string) {
	t.Helper()
	if os.Getenv("WEIR_SCREENSHOTS") != "1" {
		return
	}
	b.Screenshot(filepath.Join("..", "docs", "screenshots", name+".png"))
}

// onPhone reloads the page on a phone-sized screen, waits for ready,
// checks that nothing is wider than the screen, and takes a screenshot.
func onPhone(t *testing.T, b *uitest.Browser, name, ready string) {
	t.Helper()
	b.Viewport(390, 844, true)
	b.Run(chromedp.Reload())
	b.WaitFor(ready)
	if w := uitest.Eval[int](b, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("%s: the page is %d px wider than a phone's screen", name, w)
	}
	screenshot(t, b, name)
}

// A trend opens with history drawn, then appends live samples.
func TestBrowserTrend(t *testing.T) {
	b := uitest.NewBrowser(t)
	r := newPagesRig(t)
	if msg := b.Login(r.s.URL, "viewer", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(r.s.URL + "/ui/trends?tag=plant/line1/speed&tag=plant/line1/temp")
	b.WaitFor(`document.querySelector('#chart').dataset.loaded === '1' && document.querySelector('#chart canvas') !== null`)
	n := uitest.Eval[int](b, `Number(document.querySelector('#chart').dataset.points)`)
	// Two series, one point per pixel of the chart's width at most.
	if n < 200 || n > 2*uitest.Width {
		t.Fatalf("%d points drawn", n)
	}
	if msg := b.Text(".trend-status"); msg != "" {
		t.Fatalf("status says %q", msg)
	}
	// The live tail: a new sample is appended without a reload.
	uitest.Eval[bool](b, `window.__stay = true`)
	first := time.Now().Truncate(time.Millisecond)
	for i := range 3 {
		now := first.Add(time.Duration(i) * time.Millisecond).UnixNano()
		r.s.Values.Process([]model.Sample{{Path: "plant/line1/speed", Value: model.Float(30 + float64(i)), SourceTime: now, EdgeTime: now}})
	}
	// Appended: the newest row is one of these samples (the point count
	// alone can stay put on a slow machine: the window's start moves on
	// and trims old rows while the tail grows).
	b.WaitFor(`Number(document.querySelector('#chart').dataset.last) >= ` + strconv.FormatFloat(float64(first.UnixMilli())/1000, 'f', 3, 64) + ` && window.__stay === true`)
	// Another range reloads the history.
	b.Run(chromedp.Click(chromedp.CSS(`button[data-trend-range="24h"]`)))
	b.WaitFor(`document.querySelector('#chart').dataset.range === '24h' && document.querySelector('#chart').dataset.loaded === '1'`)
	noCSPViolations(t, b)
	screenshot(t, b, "trends")
	onPhone(t, b, "trends-phone", `document.querySelector('#chart').dataset.loaded === '1'`)
	b.Viewport(uitest.Width, uitest.Height, false)
	b.Open(r.s.URL + "/ui/trends?tag=plant/line1/speed&tag=plant/line1/temp")
	// The search box suggests tags; choosing one adds it to the chart.
	b.Run(chromedp.SendKeys(chromedp.CSS(`#trend-q`), "line2"))
	b.WaitFor(`document.querySelector('#suggest a') !== null`)
	b.Run(chromedp.Click(chromedp.CSS(`#suggest a`)))
	b.WaitFor(`document.querySelector('#chart') !== null && document.querySelector('#chart').dataset.tags.split(',').length === 3`)
}

func itoa(n int) string { return strconv.Itoa(n) }

// An operator acknowledges an alarm with a comment: the page shows the
// new state, and the trail records the command. A viewer has no buttons,
// and the API refuses the page's own script.
func TestBrowserAlarmAck(t *testing.T) {
	b := uitest.NewBrowser(t)
	r := newPagesRig(t)
	if msg := b.Login(r.s.URL, "viewer", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(r.s.URL + "/ui/alarms")
	b.WaitFor(`document.querySelector('tr[data-alarm="line1_overtemp"]') !== null`)
	if n := uitest.Eval[int](b, `document.querySelectorAll('#alarms button').length`); n != 0 {
		t.Fatalf("a viewer sees %d alarm buttons", n)
	}
	ack := `weir.api('POST', '/api/v1/alarms/line1_overtemp/ack', {comment: 'x'}).then(function (r) { return r.status; })`
	if code := uitest.Eval[int](b, ack); code != http.StatusForbidden {
		t.Fatalf("a viewer's ack: %d, want 403", code)
	}
	b.Logout()

	if msg := b.Login(r.s.URL, "operator", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(r.s.URL + "/ui/alarms")
	row := `tr[data-alarm="line1_overtemp"]`
	b.WaitFor(`document.querySelector('` + row + `') !== null && document.querySelector('` + row + `').dataset.state === 'unack'`)
	uitest.Eval[bool](b, `window.__stay = true`)
	b.Run(chromedp.Click(chromedp.CSS(row + ` button[data-action="ack"]`)))
	b.WaitFor(`document.querySelector('#alarm-dialog').open`)
	// No comment: refused in the page, nothing sent.
	b.Run(chromedp.Click(chromedp.CSS(`#alarm-submit`)))
	b.WaitFor(`document.querySelector('#alarm-error').textContent.includes('required') || document.querySelector('#alarm-comment').validity.valueMissing`)
	b.Run(chromedp.SendKeys(chromedp.CSS(`#alarm-comment`), "checked zone 3, fan restarted"),
		chromedp.Click(chromedp.CSS(`#alarm-submit`)))
	b.WaitFor(`document.querySelector('` + row + `').dataset.state === 'acked' && window.__stay === true`)
	if got := b.Text(row + ` td:nth-child(6)`); !strings.Contains(got, "api:operator") || !strings.Contains(got, "fan restarted") {
		t.Fatalf("acknowledged column: %q", got)
	}
	// Shelve another for an hour.
	row2 := `tr[data-alarm="line1_low_air"]`
	b.Run(chromedp.Click(chromedp.CSS(row2 + ` button[data-action="shelve"]`)))
	b.WaitFor(`document.querySelector('#alarm-dialog').open`)
	b.Run(chromedp.SendKeys(chromedp.CSS(`#alarm-comment`), "compressor maintenance"), chromedp.Click(chromedp.CSS(`#alarm-submit`)))
	b.WaitFor(`document.querySelector('` + row2 + `').dataset.shelved === '1'`)
	noCSPViolations(t, b)
	screenshot(t, b, "alarms")
	onPhone(t, b, "alarms-phone", `document.querySelector('tr[data-alarm]') !== null`)
	// The trail holds the acknowledgement.
	deadline := time.Now().Add(uitest.HangBound)
	for {
		es, err := r.trail.Tail(100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range es {
			if e.Kind == string(security.AlarmCommand) && e.Caller == "api:operator" && strings.Contains(e.Detail+e.Path, "line1_overtemp") {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alarm.command entry for the ack in the trail: %+v", es)
		}
		time.Sleep(10 * time.Millisecond) // polling the trail, bounded by deadline
	}
}

// An operator writes a setpoint: the policy is shown first, a reason is
// required, and the result comes with its audit entry; the audit viewer
// lists it and verifies the chain. A viewer gets no form.
func TestBrowserWriteSetpoint(t *testing.T) {
	b := uitest.NewBrowser(t)
	r := newPagesRig(t)
	if msg := b.Login(r.s.URL, "viewer", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(r.s.URL + "/ui/write?tag=plant/line1/speed")
	if uitest.Eval[bool](b, `document.querySelector('#write-form') !== null`) {
		t.Fatal("a viewer is shown the write form")
	}
	b.Logout()

	if msg := b.Login(r.s.URL, "operator", uitest.Password); msg != "" {
		t.Fatal(msg)
	}
	b.Open(r.s.URL + "/ui/tags?path=plant/line1")
	b.Run(chromedp.Click(chromedp.CSS(`tr[data-tag="plant/line1/speed"] a.write`)))
	b.WaitFor(`location.pathname === '/ui/write' && document.querySelector('#w-verdict') !== null`)
	if got := b.Text("#w-verdict"); got != "You may write this tag." {
		t.Fatalf("verdict %q", got)
	}
	if got := b.Text("#w-policy-table"); !strings.Contains(got, "plant/+/speed") || !strings.Contains(got, "0 … 100") || !strings.Contains(got, "operator") {
		t.Fatalf("policy shown: %q", got)
	}
	// No reason: the browser's own check refuses (required), nothing is sent.
	b.Run(chromedp.SendKeys(chromedp.CSS(`#w-value`), "42.5"), chromedp.Click(chromedp.CSS(`#w-send`)))
	if uitest.Eval[bool](b, `document.querySelector('#w-outcome') !== null`) {
		t.Fatal("a write without a reason was sent")
	}
	b.Run(chromedp.SendKeys(chromedp.CSS(`#w-reason`), "recipe B start-up"), chromedp.Click(chromedp.CSS(`#w-send`)))
	b.WaitFor(`document.querySelector('#w-audit-entry') !== null`)
	if got := b.Text("#w-outcome"); !strings.HasPrefix(got, "Written: 42.5") {
		t.Fatalf("outcome %q", got)
	}
	for field, want := range map[string]string{"result": "allowed", "caller": "api:operator", "path": "plant/line1/speed", "new": "42.5", "note": "recipe B start-up"} {
		if got := b.Text(`#w-audit-entry dd[data-field="` + field + `"]`); got != want {
			t.Errorf("audit entry %s = %q, want %q", field, got, want)
		}
	}
	noCSPViolations(t, b)
	screenshot(t, b, "write")
	// Out of range: refused by the policy, and the refusal is audited too.
	uitest.Eval[bool](b, `document.querySelector('#w-value').value = ''; true`)
	b.Run(chromedp.SendKeys(chromedp.CSS(`#w-value`), "500"), chromedp.Click(chromedp.CSS(`#w-send`)))
	b.WaitFor(`(document.querySelector('#w-outcome') || {dataset: {}}).dataset.outcome === 'refused' &&
		(document.querySelector('#w-audit-entry dd[data-field="result"]') || {}).textContent === 'denied'`)

	// The audit viewer lists both and verifies the chain.
	b.Open(r.s.URL + "/ui/audit?tag=plant/line1/speed")
	b.WaitFor(`document.querySelectorAll('#audit tr[data-seq]').length === 2`)
	b.Run(chromedp.Click(chromedp.CSS(`#verify`)))
	b.WaitFor(`document.querySelector('#verify-result').dataset.ok === '1'`)
	if got := b.Text("#verify-result"); !strings.Contains(got, "Chain intact") || !strings.Contains(got, "signed checkpoint") {
		t.Fatalf("verification: %q", got)
	}
	noCSPViolations(t, b)
	screenshot(t, b, "audit")
	uitest.Eval[bool](b, `var f = document.querySelector('#f-outcome'); f.value = 'denied'; f.dispatchEvent(new Event('change')); true`)
	b.WaitFor(`document.querySelectorAll('#audit tr[data-seq]').length === 1`)
}
