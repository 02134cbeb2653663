package config

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/weir-edge/weir/route"
)

const routeSource = `
data_dir: /tmp/weir-route-test
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
                - {name: speed, table: holding, address: 0, type: uint16}
                - {name: temperature, table: holding, address: 1, type: uint16}
        - name: recipes
          address: 127.0.0.1:5021
          namespace: acme/plant1/recipes
          groups:
            - interval: 1s
              tags:
                - {name: r1, table: holding, address: 0, type: uint16}
`

// The route sample is a valid configuration fragment.
func TestRouteSampleParses(t *testing.T) {
	cfg, err := Parse("sample.yaml", []byte(routeSource+route.SampleConfig), noEnv)
	if err != nil {
		t.Fatalf("route/sample.yaml does not parse: %v", err)
	}
	if len(cfg.Sinks) != 3 || cfg.Sinks[2].Route == nil || len(cfg.Sinks[2].Route.Processors) != 2 {
		t.Fatalf("sinks not decoded: %+v", cfg.Sinks)
	}
	opts, err := cfg.Build(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer releaseAll(opts.Sinks)
	for _, s := range opts.Sinks {
		if s.Route == nil {
			t.Errorf("sink %s has no route: every sink gets one", s.Name)
		}
	}
	cloud := opts.Sinks[2].Route
	if cloud.MaxClass() != route.Public || !cloud.HasFlusher() {
		t.Errorf("cloud route: max class %s, flusher %v", cloud.MaxClass(), cloud.HasFlusher())
	}
	if _, names := cloud.Processors(); !slices.Equal(names, []string{"sink/cloud/db", "sink/cloud/1m"}) {
		t.Errorf("route processor names %v", names)
	}
}

func TestFlowReport(t *testing.T) {
	doc := routeSource + `
classification:
  rules:
    - match: ["acme/plant1/+/+/+/speed"]
      class: public
    - match: ["acme/plant1/recipes/#"]
      class: confidential
processors:
  - name: oee
    derive:
      tags:
        - {path: acme/plant1/kpi/oee, expr: "s * 2", vars: {s: acme/plant1/filling/line1/filler/speed}}
sinks:
  - name: site
    max_class: confidential
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: a}
  - name: broker
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: b}
    route:
      include: ["acme/plant1/#"]
      exclude: ["acme/plant1/recipes/#"]
  - name: cloud
    max_class: public
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: c}
    route:
      include: ["acme/plant1/+/+/+/speed", "acme/plant1/#"]
      quality: good
      processors:
        - {name: db, deadband: {rules: [{match: ["#"], absolute: 1}]}}
`
	cfg, ps := Inspect("flow.yaml", []byte(doc), Options{Offline: true})
	if cfg == nil {
		t.Fatalf("Inspect: %v", ps)
	}
	// Validation warns once, at the include pattern that asks too much.
	var warns []string
	for _, p := range ps {
		if p.Warning {
			warns = append(warns, p.Error())
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "sinks[2].route.include[1]") || !strings.Contains(warns[0], "confidential") {
		t.Errorf("warnings %q, want one at sinks[2].route.include[1] naming confidential", warns)
	}
	rep := FlowReport(cfg)
	if rep.KnownTags != 4 || fmt.Sprint(rep.Classes) != "[{public 1} {internal 2} {confidential 1}]" {
		t.Errorf("known tags %d, classes %v", rep.KnownTags, rep.Classes)
	}
	want := map[string]string{
		"site":   "confidential recv [{public 1} {internal 2} {confidential 1}] denied []",
		"broker": "internal recv [{public 1} {internal 2}] denied []",
		"cloud":  "public recv [{public 1}] denied [{internal 2} {confidential 1}]",
	}
	for _, s := range rep.Sinks {
		got := fmt.Sprintf("%s recv %v denied %v", s.MaxClass, s.Receives, s.Denied)
		if got != want[s.Name] {
			t.Errorf("sink %s: %s, want %s", s.Name, got, want[s.Name])
		}
	}
	if c := rep.Sinks[2]; c.Quality != "good" || !slices.Equal(c.Processors, []string{"db (deadband)"}) || c.Kind != "mqtt" {
		t.Errorf("cloud flow %+v", c)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Sink != "cloud" || rep.Warnings[0].Key != "sinks[2].route.include[1]" {
		t.Errorf("report warnings %+v", rep.Warnings)
	}
}

func TestFilterAlgebra(t *testing.T) {
	split := func(f string) []string { return strings.Split(f, "/") }
	for _, tc := range []struct {
		a, b      string
		intersect string // "" none
	}{
		{"a/#", "a/b/c", "a/b/c"},
		{"a/#", "a", "a"},
		{"a/+/c", "a/b/+", "a/b/c"},
		{"a/+", "a/b/c", ""},
		{"a/b", "a/c", ""},
		{"#", "x/+", "x/+"},
		{"a/+/#", "+/b", "a/b"},
	} {
		got, ok := intersect(split(tc.a), split(tc.b))
		if s := strings.Join(got, "/"); (ok && s != tc.intersect) || (!ok && tc.intersect != "") {
			t.Errorf("intersect(%s, %s) = %q %v, want %q", tc.a, tc.b, s, ok, tc.intersect)
		}
	}
	for _, tc := range []struct {
		e, f string
		want bool
	}{
		{"a/#", "a/b/+", true},
		{"a/#", "a", true},
		{"a/+", "a/b", true},
		{"a/+", "a/#", false},
		{"a/b", "a/+", false},
		{"a/b/c", "a/b", false},
	} {
		if got := covers(split(tc.e), split(tc.f)); got != tc.want {
			t.Errorf("covers(%s, %s) = %v", tc.e, tc.f, got)
		}
	}
}

// A changed route or max_class changes that sink alone (keeping its
// buffer); a changed classification is live, for every route at once,
// and restarts nothing.
func TestRouteReloadDiff(t *testing.T) {
	base := routeSource + `
sinks:
  - name: a
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: a}
  - name: b
    mqtt: {url: "tcp://127.0.0.1:1883", client_id: b}
`
	parse := func(doc string) *Config {
		t.Helper()
		c, err := Parse("x.yaml", []byte(doc), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := parse(base)
	routed := parse(strings.Replace(base, "client_id: b}", "client_id: b}\n    max_class: public\n    route: {include: [\"acme/#\"]}", 1))
	d := Compare(old, routed)
	if !slices.Equal(d.Sinks.Changed, []string{"b"}) || !slices.Equal(d.KeepBuffers, []string{"b"}) || d.Processors || len(d.Restart) > 0 {
		t.Errorf("route change: %+v", d)
	}
	classified := parse(base + "classification: {rules: [{match: [\"acme/#\"], class: confidential}]}\n")
	d = Compare(old, classified)
	if !slices.Equal(d.Live, []string{"classification"}) || len(d.Sinks.Changed) > 0 || len(d.Restart) > 0 || d.Processors {
		t.Fatalf("classification change: %+v", d)
	}
	ch, err := classified.BuildChange(d, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Classification == nil || ch.Classification.Classifier.Class("acme/x") != route.Confidential ||
		len(ch.AddSinks)+len(ch.RemoveSinks) > 0 || ch.Empty() {
		t.Errorf("change %+v", ch)
	}
}
