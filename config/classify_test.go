package config

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/route"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/security/sectest"
)

// chainDoc is the review's plant (findings 1 and 2): rules written for
// the sources' paths, a shared chain that re-roots the namespace and
// aggregates the confidential fill weight, an internal plant broker and
// a confidential historian.
const chainDoc = `
data_dir: /tmp/weir-classify-test
sources:
  - name: plc
    modbus:
      devices:
        - name: filler
          address: 127.0.0.1:5020
          namespace: acme/plant1/filling/line1/filler
          groups:
            - interval: 1s
              tags:
                - {name: batch_id, table: holding, address: 0, type: uint16}
classification:
  rules:
    - {match: ["acme/plant1/+/+/+/line_speed"], class: public}
    - {match: ["acme/plant1/+/+/+/batch_id", "acme/plant1/+/+/+/fill_weight"], class: confidential}
processors:
  - name: reroot
    rename: {from: "acme/plant1/", to: "site1/"}
  - name: w5
    window: {match: ["site1/+/+/+/fill_weight"], size: 5s, aggregates: [mean], pass_through: true}
sinks:
  - name: plant
    buffer: {type: memory}
    mqtt: {url: "tcp://127.0.0.1:1", client_id: plant}
  - name: vault
    max_class: confidential
    buffer: {type: memory}
    mqtt: {url: "tcp://127.0.0.1:1", client_id: vault}
`

// End to end through the engine: a confidential tag renamed by the shared
// chain, and the window aggregate the chain makes of it, never enter the
// internal sink's buffer (each is reported once); the confidential sink
// gets them; public and unclassified tags reach both.
func TestSharedChainKeepsClasses(t *testing.T) {
	cfg, err := Parse("chain.yaml", []byte(chainDoc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.Build(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer releaseAll(opts.Sinks)
	rec := &sectest.Recorder{}
	bufs := map[string]buffer.Buffer{}
	for _, s := range opts.Sinks {
		s.Route.SetEvents(rec)
		bufs[s.Name] = s.Buffer
	}
	opts.TickInterval, opts.FirstSeq = -1, 1
	e, err := engine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	const line = "acme/plant1/filling/line1/filler/"
	for i := range 10 {
		ts := start.Add(time.Duration(i) * time.Second).UnixNano()
		var batch []model.Sample
		for _, tag := range []string{"batch_id", "fill_weight", "line_speed", "motor_temp"} {
			batch = append(batch, model.Sample{Path: line + tag, Value: model.Float(float64(i)), SourceTime: ts, EdgeTime: ts})
		}
		if err := e.Emit(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Tick(ctx, start.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for name, b := range bufs {
		got[name] = drainPaths(t, b)
	}
	const site = "site1/filling/line1/filler/"
	want := map[string][]string{
		"plant": {site + "line_speed", site + "motor_temp"},
		"vault": {site + "batch_id", site + "fill_weight", site + "fill_weight/mean_5s", site + "line_speed", site + "motor_temp"},
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("sink %s received %q, want %q", name, got[name], w)
		}
	}
	var denied []string
	for _, ev := range rec.Events() {
		if ev.Kind == security.EgressDenied && ev.Component == "plant" {
			denied = append(denied, ev.Object)
		}
	}
	slices.Sort(denied)
	if w := []string{site + "batch_id", site + "fill_weight", site + "fill_weight/mean_5s"}; !slices.Equal(denied, w) {
		t.Errorf("plant's denials reported for %q, want %q once each", denied, w)
	}
}

// drainPaths empties a memory buffer and lists the paths it held, once each.
func drainPaths(t *testing.T, b buffer.Buffer) []string {
	t.Helper()
	var out []string
	for b.Stats().Depth > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		batch, err := b.Next(ctx, 1000)
		cancel()
		if err != nil {
			t.Fatalf("buffer Next: %v", err)
		}
		for _, s := range batch.Samples {
			out = append(out, s.Path)
		}
		if err := b.Ack(batch); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// A new shared chain carries the rules again on hot reload: the change
// holds a new classifier even when the classification block is the same.
func TestChainChangeReclassifies(t *testing.T) {
	before, err := Parse("a.yaml", []byte(strings.Replace(chainDoc, "from: \"acme/plant1/\", to: \"site1/\"", "from: \"acme/plant9/\", to: \"site1/\"", 1)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	after, err := Parse("b.yaml", []byte(chainDoc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := after.BuildChange(Compare(before, after), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Classification == nil {
		t.Fatal("a changed shared chain brings no new classification")
	}
	if c := ch.Classification.Classifier.Class("site1/filling/line1/filler/batch_id"); c != route.Confidential {
		t.Errorf("renamed batch_id classified %s after the reload, want confidential", c)
	}
}

// What validate reports is what runs: the flow report counts the tags as
// they leave the shared chain, window outputs included, with the
// runtime's classes, and warns where a derived tag is classified below
// its inputs, where a route without include reaches past the sink's
// class (every class named with its count), and names the sources whose
// tags are known only at run time.
func TestFlowReportFollowsTheChain(t *testing.T) {
	doc := routeSource + `
  - name: uns
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: uns, subscriptions: [{topic: "plant/#", path: "{topic}", format: json}]}
classification:
  rules:
    - {match: ["acme/plant1/+/+/+/speed"], class: public}
    - {match: ["acme/plant1/recipes/#"], class: confidential}
processors:
  - name: reroot
    rename: {from: "acme/plant1", to: "site1"}
  - name: w
    window: {match: ["site1/recipes/#"], size: 1m, aggregates: [mean, max]}
  - name: kpi
    derive:
      tags:
        - {path: site1/kpi/recipe_mix, expr: "r * 2", vars: {r: site1/recipes/r1}}
sinks:
  - name: cloud
    max_class: public
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: c}
    route: {quality: good}
  - name: plant
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: p}
    route: {include: ["site1/#"]}
`
	cfg, ps := Inspect("flow.yaml", []byte(doc), Options{Offline: true})
	if cfg == nil {
		t.Fatalf("Inspect: %v", ps)
	}
	rep := FlowReport(cfg)
	// speed, temperature, r1/mean_1m, r1/max_1m (r1 swallowed), recipe_mix.
	if rep.KnownTags != 5 || fmt.Sprint(rep.Classes) != "[{public 1} {internal 2} {confidential 2}]" {
		t.Errorf("known tags %d, classes %v", rep.KnownTags, rep.Classes)
	}
	if !slices.Equal(rep.RuntimeSources, []string{"uns"}) {
		t.Errorf("runtime sources %q", rep.RuntimeSources)
	}
	if len(rep.Carried) != 2 || rep.Carried[1].Match[0] != "site1/recipes/#" {
		t.Errorf("carried rules %+v", rep.Carried)
	}
	var warns []string
	for _, w := range rep.Warnings {
		warns = append(warns, w.Key+": "+w.Msg)
	}
	for i, want := range []string{
		`processors[2].derive.tags[0].path: derive site1/kpi/recipe_mix computes an internal tag from confidential inputs (site1/recipes/r1)`,
		`sinks[0].route: the route has no include: it selects every tag, among them 2 internal and 2 confidential known tags (internal by default; confidential by classification.rules[1] "acme/plant1/recipes/#" (carried through the shared chain))`,
		`sinks[1].route.include[0]: "site1/#" selects 2 confidential known tags`,
	} {
		if i >= len(warns) || !strings.HasPrefix(warns[i], want) {
			t.Errorf("warning %d:\n got %q\nwant prefix %q", i, warns[min(i, len(warns)-1)], want)
		}
	}
	if len(warns) != 3 {
		t.Errorf("warnings %q, want 3", warns)
	}
	var vw []string
	for _, p := range ps {
		if p.Warning {
			vw = append(vw, p.Error())
		}
	}
	if len(vw) != 3 {
		t.Errorf("validation warnings %q, want the report's 3 at file:line", vw)
	}
}

// A route pattern written for the paths sources make, when the shared
// chain renames them, matches nothing where routes look: validate says
// so (an exclude that keeps nothing away is a leak waiting to happen),
// and does not also warn about classes the pattern can no longer select.
func TestFlowReportRenamedAway(t *testing.T) {
	doc := routeSource + `
classification:
  rules:
    - {match: ["acme/plant1/recipes/#"], class: confidential}
    - {match: ["acme/plant1/+/+/+/speed"], class: public}
processors:
  - {name: reroot, rename: {from: "acme/plant1", to: "site1"}}
sinks:
  - name: cloud
    max_class: public
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: c}
    route: {include: ["acme/plant1/#", "site1/+/+/+/speed"], exclude: ["acme/plant1/+/+/+/temperature", "site1/x"]}
`
	cfg, ps := Inspect("flow.yaml", []byte(doc), Options{Offline: true})
	if cfg == nil {
		t.Fatalf("Inspect: %v", ps)
	}
	var got []string
	for _, w := range FlowReport(cfg).Warnings {
		got = append(got, w.Key+" "+w.Msg[:strings.IndexByte(w.Msg, ':')])
	}
	want := []string{
		`sinks[0].route.include[0] "acme/plant1/#" matches tags as sources name them (acme/plant1/filling/line1/filler/speed), but the shared chain renames them and routes see the renamed paths`,
		`sinks[0].route.exclude[0] "acme/plant1/+/+/+/temperature" matches tags as sources name them (acme/plant1/filling/line1/filler/temperature), but the shared chain renames them and routes see the renamed paths`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings\n%q\nwant\n%q", got, want)
	}
}
