package bundle

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-edge/weir/config"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// minimal is a valid configuration the render cases start from.
const minimal = `
sources:
  - name: line
    modbus:
      devices:
        - name: plc
          address: 127.0.0.1:5020
          groups:
            - interval: 1s
              tags:
                - {name: temp, table: input, address: 0, type: float32}
sinks:
  - name: uns
    mqtt: {url: "mqtts://broker:8883", topic_prefix: weir, qos: 1}
`

func base(extra string) Layer { return Layer{Kind: KindBase, Data: []byte(minimal + extra)} }
func group(name, data string) Layer {
	return Layer{Kind: KindGroup, Name: name, Data: []byte(data)}
}
func site(data string) Layer { return Layer{Kind: KindSite, Name: "s1", Data: []byte(data)} }

// at returns the value at a key path ("sinks[0].mqtt.url") of a rendered
// configuration, or nil.
func at(t *testing.T, cfg []byte, path string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(cfg, &v); err != nil {
		t.Fatalf("rendered configuration does not parse: %v", err)
	}
	for _, seg := range strings.Split(strings.ReplaceAll(path, "[", ".["), ".") {
		if strings.HasPrefix(seg, "[") {
			i, _ := strconv.Atoi(strings.Trim(seg, "[]"))
			l, ok := v.([]any)
			if !ok || i >= len(l) {
				return nil
			}
			v = l[i]
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[seg]
	}
	return v
}

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		layers []Layer
		want   map[string]any // key path → value (nil: absent)
		err    error          // sentinel the error wraps
		msg    []string       // substrings of the error
		notMsg string         // must not appear in the error
	}{
		{name: "site over group over base",
			layers: []Layer{base("log: {level: info}"), group("a", "log: {level: debug}"), site("log: {level: warn}")},
			want:   map[string]any{"log.level": "warn"}},
		{name: "group over base",
			layers: []Layer{base("log: {level: info}"), group("a", "log: {level: debug}")},
			want:   map[string]any{"log.level": "debug"}},
		{name: "blocks merge key by key",
			layers: []Layer{base("log: {level: info, format: json}"), site("log: {level: warn}")},
			want:   map[string]any{"log.level": "warn", "log.format": "json"}},
		{name: "named item replaced whole, in place",
			layers: []Layer{base(""), group("eu", "sinks:\n  - name: uns\n    mqtt: {url: 'mqtts://eu:8883', topic_prefix: eu}\n")},
			want: map[string]any{"sinks[0].name": "uns", "sinks[0].mqtt.url": "mqtts://eu:8883",
				"sinks[0].mqtt.topic_prefix": "eu", "sinks[0].mqtt.qos": nil}},
		{name: "named item added at the end",
			layers: []Layer{base(""), site("sinks:\n  - name: local\n    mqtt: {url: 'mqtts://local:8883', topic_prefix: l}\n")},
			want:   map[string]any{"sinks[0].name": "uns", "sinks[1].name": "local"}},
		{name: "named item removed",
			layers: []Layer{base("processors:\n  - {name: a, rename: {from: a/, to: x/}}\n  - {name: b, rename: {from: b/, to: y/}}\n"),
				group("eu", "processors:\n  - {name: a, remove: true}\n")},
			want: map[string]any{"processors[0].name": "b", "processors[1]": nil}},
		{name: "removing an absent item changes nothing",
			layers: []Layer{base(""), site("sinks:\n  - {name: nothere, remove: true}\n")},
			want:   map[string]any{"sinks[0].name": "uns", "sinks[1]": nil}},
		{name: "named list in a block merges by name",
			layers: []Layer{base("auth:\n  users:\n    - {name: ann, role: viewer}\n    - {name: bob, role: viewer}\n"),
				site("auth:\n  users:\n    - {name: bob, role: operator}\n    - {name: cy, role: viewer}\n")},
			want: map[string]any{"auth.users[0].role": "viewer", "auth.users[1].role": "operator", "auth.users[2].name": "cy"}},
		{name: "other lists replaced whole",
			layers: []Layer{base("http: {listen: '127.0.0.1:9464', allowed_hosts: [a.example, b.example]}"), site("http: {allowed_hosts: [c.example]}")},
			want:   map[string]any{"http.allowed_hosts": []any{"c.example"}}},
		{name: "write_policies replaced whole (its items have no name)",
			layers: []Layer{base("write_policies:\n  - {match: a/x, allow: false}\n  - {match: a/y, allow: false}\n"),
				group("eu", "write_policies:\n  - {match: b/x, allow: false}\n")},
			want: map[string]any{"write_policies[0].match": "b/x", "write_policies[1]": nil}},
		{name: "[] empties a named list",
			layers: []Layer{base("processors:\n  - {name: a, rename: {from: a/, to: x/}}\n"), site("processors: []")},
			want:   map[string]any{"processors[0]": nil}},
		{name: "groups agreeing is no tie",
			layers: []Layer{base(""), group("a", "log: {level: debug}"), group("b", "log: {level: debug, format: json}")},
			want:   map[string]any{"log.level": "debug", "log.format": "json"}},
		{name: "groups adding different named items is no tie",
			layers: []Layer{base(""), group("a", "sinks:\n  - name: ga\n    mqtt: {url: 'mqtts://a:8883', topic_prefix: a}\n"),
				group("b", "sinks:\n  - name: gb\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: b}\n")},
			want: map[string]any{"sinks[1].name": "ga", "sinks[2].name": "gb"}},
		{name: "groups agreeing on an item in another key order is no tie",
			layers: []Layer{base(""), group("a", "sinks:\n  - {name: x, mqtt: {url: 'mqtts://a:8883', topic_prefix: a}}\n"),
				group("b", "sinks:\n  - {mqtt: {topic_prefix: a, url: 'mqtts://a:8883'}, name: x}\n")},
			want: map[string]any{"sinks[1].name": "x", "sinks[2]": nil}},
		{name: "tie on a leaf", err: ErrTie,
			layers: []Layer{base(""), group("b", "log: {level: warn}"), group("a", "log: {level: debug}")},
			msg:    []string{`log.level: group "a" and group "b" set different values`}},
		{name: "tie on a named item", err: ErrTie,
			layers: []Layer{base(""), group("a", "sinks:\n  - name: x\n    mqtt: {url: 'mqtts://a:8883', topic_prefix: a}\n"),
				group("b", "sinks:\n  - name: x\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: a}\n")},
			msg: []string{`sinks[x]: group "a" and group "b"`}},
		{name: "tie between a removal and a change", err: ErrTie,
			layers: []Layer{base(""), group("a", "sinks:\n  - {name: uns, remove: true}\n"),
				group("b", "sinks:\n  - name: uns\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: a}\n")},
			msg: []string{`sinks[uns]: group "a" and group "b"`}},
		{name: "tie on a block against a value", err: ErrTie,
			layers: []Layer{base(""), group("a", "log: {level: debug}"), group("b", "log: null")},
			msg:    []string{`log: group "a" and group "b"`}},
		{name: "a tie stands even where the site sets the key", err: ErrTie,
			layers: []Layer{base(""), group("a", "log: {level: debug}"), group("b", "log: {level: warn}"), site("log: {level: info}")},
			msg:    []string{"log.level"}},
		{name: "every tie reported at once", err: ErrTie,
			layers: []Layer{base(""), group("a", "log: {level: debug, format: json}"), group("b", "log: {level: warn, format: text}")},
			msg:    []string{"log.level:", "log.format:"}},
		{name: "invalid result names the layer", err: ErrInvalidConfig,
			layers: []Layer{base(""), site("sinks:\n  - name: uns\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: a, qos: 7}\n")},
			msg:    []string{`sinks[0].mqtt.qos:`, `(set by site "s1")`}},
		{name: "unknown key names the group", err: ErrInvalidConfig,
			layers: []Layer{base(""), group("eu", "log: {levle: debug}")},
			msg:    []string{`log.levle: unknown key`, `(set by group "eu")`}},
		{name: "missing key is set by no layer", err: ErrInvalidConfig,
			layers: []Layer{Layer{Kind: KindBase, Data: []byte("log: {level: info}")}},
			msg:    []string{"sources: at least one source is required\n"}},
		{name: "clear secret refused, not shown", err: ErrClearSecret,
			layers: []Layer{base(""), group("eu", "sinks:\n  - name: uns\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: a, password: hunter2}\n")},
			msg:    []string{`sinks[0].mqtt.password: a secret is written in clear text`, `(set by group "eu")`}, notMsg: "hunter2"},
		{name: "clear secret found by its type (audit.key)", err: ErrClearSecret,
			layers: []Layer{base(""), site("audit: {key: s3cr3t}\n")},
			msg:    []string{`audit.key: a secret is written in clear text`}, notMsg: "s3cr3t"},
		{name: "clear secret found by its type (auth_header.value)", err: ErrClearSecret,
			layers: []Layer{base(""), site("sinks:\n  - name: w\n    http: {url: 'https://x', auth_header: {value: s3cr3t}}\n")},
			msg:    []string{`sinks[0].http.auth_header.value: a secret`}, notMsg: "s3cr3t"},
		{name: "clear secret under an unknown key refused", err: ErrClearSecret,
			layers: []Layer{base(""), site("extra:\n  api_key: s3cr3t\n")},
			msg:    []string{`extra.api_key`}, notMsg: "s3cr3t"},
		{name: "secret references pass",
			layers: []Layer{base(""), site("sinks:\n  - name: uns\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: a, password: '${secret:MQTT_PW}'}\n" +
				"  - name: two\n    mqtt: {url: 'mqtts://c:8883', topic_prefix: b, password: {env: PW2}}\n")},
			want: map[string]any{"sinks[0].mqtt.password": "${secret:MQTT_PW}", "sinks[1].mqtt.password.env": "PW2"}},
		{name: "reference inside other text refused", err: ErrInvalidConfig,
			layers: []Layer{base(""), site("sinks:\n  - name: uns\n    mqtt: {url: 'mqtts://u:${secret:PW}@b:8883', topic_prefix: a}\n")},
			msg:    []string{"sinks[0].mqtt.url: a ${secret:…} or ${sealed:…} reference must be the whole value"}},
		{name: "remove with other keys refused", err: ErrLayer,
			layers: []Layer{base(""), site("sinks:\n  - {name: uns, remove: true, batch_size: 3}\n")},
			msg:    []string{`site "s1"`, "sinks[uns]: an item with `remove: true` takes only its name"}},
		{name: "remove: false refused", err: ErrLayer,
			layers: []Layer{base(""), site("sinks:\n  - {name: uns, remove: false}\n")},
			msg:    []string{"sinks[uns].remove: write `remove: true`"}},
		{name: "duplicate names in one layer refused", err: ErrLayer,
			layers: []Layer{base(""), group("eu", "sinks:\n  - {name: x, remove: true}\n  - {name: x, remove: true}\n")},
			msg:    []string{`group "eu"`, `the name "x" appears twice`}},
		{name: "anchors refused", err: ErrLayer,
			layers: []Layer{base(""), site("log: &l {level: info}\nengine: *l\n")},
			msg:    []string{`site "s1"`, "anchors and aliases"}},
		{name: "merge keys refused", err: ErrLayer,
			layers: []Layer{base(""), site("log:\n  <<: {level: info}\n")},
			msg:    []string{"merge keys (<<) are not allowed"}},
		{name: "custom tag refused", err: ErrLayer,
			layers: []Layer{base(""), site("log: {level: !weird info}\n")},
			msg:    []string{"tag !weird is not allowed"}},
		{name: "duplicate key refused", err: ErrLayer,
			layers: []Layer{base(""), site("log: {level: info}\nlog: {level: warn}\n")},
			msg:    []string{`key "log" appears twice`}},
		{name: "not a block", err: ErrLayer,
			layers: []Layer{base(""), site("- a\n- b\n")},
			msg:    []string{"the document must be a block of keys"}},
		{name: "two documents", err: ErrLayer,
			layers: []Layer{base(""), site("log: {level: info}\n---\nlog: {level: warn}\n")},
			msg:    []string{"one YAML document expected"}},
		{name: "site layer of another site", err: ErrLayer,
			layers: []Layer{base(""), {Kind: KindSite, Name: "s2"}},
			msg:    []string{`site "s2" given to render site "s1"`}},
		{name: "group given twice", err: ErrLayer,
			layers: []Layer{base(""), group("a", ""), group("a", "")},
			msg:    []string{`group "a" given twice`}},
		{name: "empty layers are fine",
			layers: []Layer{base(""), group("a", ""), group("b", "# nothing\n"), site("")},
			want:   map[string]any{"sinks[0].name": "uns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Render("s1", tt.layers)
			if tt.err != nil {
				if err == nil {
					t.Fatalf("rendered, want an error wrapping %v:\n%s", tt.err, r.Config)
				}
				if !errors.Is(err, tt.err) {
					t.Errorf("error does not wrap %v: %v", tt.err, err)
				}
				for _, m := range tt.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error lacks %q:\n%v", m, err)
					}
				}
				if tt.notMsg != "" && strings.Contains(err.Error(), tt.notMsg) {
					t.Errorf("error shows %q:\n%v", tt.notMsg, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range tt.want {
				if got := at(t, r.Config, path); !equalAny(got, want) {
					t.Errorf("%s = %#v, want %#v\n%s", path, got, want, r.Config)
				}
			}
		})
	}
}

func equalAny(a, b any) bool {
	ay, _ := yaml.Marshal(a)
	by, _ := yaml.Marshal(b)
	return bytes.Equal(ay, by)
}

func fixture(t *testing.T) []Layer {
	t.Helper()
	read := func(f string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "layers", f))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []Layer{{Kind: KindBase, Data: read("base.yaml")}, {Kind: KindGroup, Name: "eu", Data: read("group-eu.yaml")},
		{Kind: KindGroup, Name: "line3", Data: read("group-line3.yaml")}, {Kind: KindSite, Name: "s1", Data: read("site-s1.yaml")}}
}

// The fixture's rendering is a golden file (go test -update rewrites it):
// what a reviewer reads to see the rules at work.
func TestRenderGolden(t *testing.T) {
	r, err := Render("s1", fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "rendered-s1.yaml")
	if *update {
		if err := os.WriteFile(golden, r.Config, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Config, want) {
		t.Errorf("rendered s1 differs from %s (go test -update rewrites it):\n%s", golden, r.Config)
	}
	for path, layer := range map[string]string{"sinks[0].mqtt.url": `group "eu"`, "log.level": `group "line3"`,
		"log.format": "base", "processors[1]": `site "s1"`, "sinks[0].mqtt.nothere": `group "eu"`, "nothere": ""} {
		if got := r.Origin(path); got != layer {
			t.Errorf("Origin(%s) = %q, want %q", path, got, layer)
		}
	}
}

// The rendered bytes depend on content only: not on the groups' order,
// comments, key order or quoting; and a rendering renders to itself.
func TestRenderCanonical(t *testing.T) {
	layers := fixture(t)
	first, err := Render("s1", layers)
	if err != nil {
		t.Fatal(err)
	}
	restyled := []Layer{layers[3], layers[2], layers[1],
		{Kind: KindBase, Data: bytes.ReplaceAll(bytes.ReplaceAll(layers[0].Data, []byte("level: info"), []byte("level: 'info' # comment")),
			[]byte("log:\n  level: 'info' # comment\n  format: json"), []byte("log: {format: \"json\", level: info}"))}}
	tests := []struct {
		name   string
		layers []Layer
	}{
		{"same layers", layers},
		{"restyled and reordered", restyled},
		{"the rendering as a base", []Layer{{Kind: KindBase, Data: first.Config}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Render("s1", tt.layers)
			if err != nil {
				t.Fatal(err)
			}
			if r.Hash != first.Hash || !bytes.Equal(r.Config, first.Config) {
				t.Errorf("hash %x, want %x:\n%s\nwant:\n%s", r.Hash, first.Hash, r.Config, first.Config)
			}
		})
	}
}

// Layers are outside input to the hub: limits hold before parsing.
func TestRenderLimits(t *testing.T) {
	deep := strings.Repeat("{a: ", 40) + "1" + strings.Repeat("}", 40)
	tests := []struct {
		name string
		data string
		msg  string
	}{
		{"too large", "log: {level: info}\n" + "#" + strings.Repeat("x", maxLayerSize), "larger than"},
		{"too many values", strings.Repeat(",", maxSeparators+1), "more than"},
		{"too deep", "x: " + deep, "nested deeper than"},
		{"syntax", "log: {level: info\n", "did not find expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render("s1", []Layer{base(""), site(tt.data)})
			if !errors.Is(err, ErrLayer) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %v, want ErrLayer with %q", err, tt.msg)
			}
		})
	}
}

// Rendering changes a configuration's form, never its meaning: every
// example rendered as a lone base layer decodes to the same Config.
func TestRenderKeepsMeaning(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Render("s1", []Layer{{Kind: KindBase, Data: data}})
			if err != nil {
				t.Fatal(err)
			}
			want, ps := config.Inspect("example", data, config.Options{Offline: true})
			if want == nil {
				t.Fatal(ps)
			}
			got, ps := config.Inspect("rendered", r.Config, config.Options{Offline: true})
			if got == nil {
				t.Fatal(ps)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("rendering changed the configuration: %v\n%s", config.Compare(want, got), r.Config)
			}
		})
	}
}
