package config

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.bad.err from the current output")

func noEnv(string) (string, bool) { return "", false }

// Every testdata/*.bad.yaml must fail with exactly the text of its .err twin.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(filepath.Base(f), data, noEnv)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			errFile := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(errFile, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(errFile)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got := err.Error(); got != strings.TrimSpace(string(want)) {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, strings.TrimSpace(string(want)))
			}
		})
	}
}

const goodConfig = `
node:
  id: ${NODE:-edge-01}
log: {level: debug, format: json}
http: {listen: "127.0.0.1:0"}
engine: {drain_timeout: 3s}
sources:
  - name: plc
    modbus:
      devices:
        - name: filler
          address: ${PLC_ADDR}
          namespace: acme/plant1/filling/line1/filler
          groups:
            - interval: 250ms
              tags:
                - {name: speed, table: holding, address: 0, type: uint16}
sinks:
  - name: uns
    batch_size: 500
    buffer: {type: memory, capacity: 1000, policy: drop_newest}
    mqtt:
      url: tcp://127.0.0.1:1883
      client_id: weir-$${literal}
`

func TestParseGood(t *testing.T) {
	env := map[string]string{"PLC_ADDR": "10.1.2.3:502"}
	cfg, err := Parse("good.yaml", []byte(goodConfig), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Node.ID != "edge-01" {
		t.Errorf("default from ${NODE:-edge-01} not applied: %q", cfg.Node.ID)
	}
	if got := cfg.Sources[0].Modbus.Devices[0].Address; got != "10.1.2.3:502" {
		t.Errorf("env expansion: address = %q", got)
	}
	if got := cfg.Sinks[0].MQTT.ClientID; got != "weir-${literal}" {
		t.Errorf("$$ escape: client_id = %q", got)
	}
	if cfg.Engine.DrainTimeout != 3*time.Second || cfg.Sinks[0].Buffer.Capacity != 1000 || cfg.Sinks[0].BatchSize != 500 {
		t.Errorf("decoded values wrong: %+v", cfg)
	}
}

func TestEnvValueWithNewlineRefused(t *testing.T) {
	env := func(string) (string, bool) { return "a\nb: c", true }
	_, err := Parse("x.yaml", []byte("node:\n  id: ${X}\n"), env)
	if err == nil || !strings.Contains(err.Error(), "x.yaml:2: environment variable X contains a line break") {
		t.Fatalf("err = %v", err)
	}
}

func TestCommentsAreNotExpanded(t *testing.T) {
	_, err := Parse("x.yaml", []byte("# ${UNSET_IN_COMMENT}\nsources: []\n"), noEnv)
	if err == nil || strings.Contains(err.Error(), "UNSET_IN_COMMENT") {
		t.Fatalf("a comment was expanded: %v", err)
	}
}

// Every example under examples/ must be a valid configuration for the
// machine it describes: checked as `weir validate -offline` does, without
// this machine's environment or the files it names, with the defaults of
// its ${VAR:-default} references.
func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) == 0 {
		t.Skip("no examples yet")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, ps := Inspect(f, data, Options{Offline: true}); len(ps) > 0 {
				t.Fatalf("example does not validate:\n%v", ps)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte(aliasBomb(7)))
	if files, _ := filepath.Glob("testdata/*.yaml"); len(files) > 0 {
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, noEnv)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}

// goSpeak matches what only a Go programmer would understand in a message:
// type names, YAML tags, decoder wording.
// A %v-printed list ("[low medium high]") counts too.
var goSpeak = regexp.MustCompile(`conf\.|time\.Duration|\[\]|map\[|!!|unmarshal|\binto (u?int|float|string|bool|struct)|\b[a-z][a-z0-9]*\.[A-Z][A-Za-z0-9]*\b|\[[a-z_]+( [a-z_]+)+\]`)

// No message names a Go type, and a secret written in clear is never
// repeated.
func TestMessagesSpeakYAML(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(filepath.Base(f), data, noEnv)
		if m := goSpeak.FindString(err.Error()); m != "" {
			t.Errorf("%s: %q in:\n%v", f, m, err)
		}
		for _, secret := range []string{"hunter2", "s3cr3t"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the secret %q is repeated:\n%v", f, secret, err)
			}
		}
	}
}

// Every scalar of every example, replaced by a list, a block and a word,
// gives messages without Go in them: the whole schema speaks YAML. All the
// scalars of a file are replaced at once, since every problem is reported
// in one run.
func TestEveryWrongKindSpeaksYAML(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		for _, bad := range []yaml.Node{
			{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "1"}}},
			{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "a"}, {Kind: yaml.ScalarNode, Value: "1"}}},
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: "zz"},
		} {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var root yaml.Node
			if err := yaml.Unmarshal(data, &root); err != nil {
				t.Fatal(err)
			}
			n := replaceScalars(&root, bad)
			if n < 10 {
				t.Fatalf("%s: only %d scalars found", f, n)
			}
			out, err := yaml.Marshal(&root)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse("x.yaml", out, noEnv)
			if err == nil {
				t.Fatalf("%s with every value %s: no error", f, bad.Tag)
			}
			if ps := err.(Problems); bad.Kind != yaml.ScalarNode && len(ps) < n/2 {
				t.Errorf("%s with every value %s: %d problems for %d values:\n%v", f, bad.Tag, len(ps), n, err)
			}
			if m := goSpeak.FindString(err.Error()); m != "" {
				t.Errorf("%s with every value %s: %q in:\n%v", f, bad.Tag, m, err)
			}
			seen := map[string]bool{}
			for _, p := range err.(Problems) {
				if seen[p.Error()] {
					t.Errorf("%s with every value %s: reported twice: %v", f, bad.Tag, p)
				}
				seen[p.Error()] = true
			}
		}
	}
}

// replaceScalars replaces every scalar value (not the keys) under n by a
// copy of bad and returns how many it replaced.
func replaceScalars(n *yaml.Node, bad yaml.Node) int {
	count := 0
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue
		}
		if c.Kind == yaml.ScalarNode {
			*c = bad
			count++
			continue
		}
		count += replaceScalars(c, bad)
	}
	return count
}

// A historian block is a sink kind: checked by its Validate, under its key.
func TestHistorianSinkBlock(t *testing.T) {
	for _, tc := range []struct {
		block, want string
	}{
		{"historian: {retention: 30d, max_bytes: 1073741824}", ""},
		{"historian: {}", ""},
		{"historian: {retention: 2h}", "sinks[0].historian.retention"},
		{"historian: {retention: soon}", "sinks[0].historian.retention"},
		{"historian: {max_bytes: 10}", "sinks[0].historian.max_bytes"},
		{"historian: {dir: relative/path}", "sinks[0].historian.dir"},
	} {
		t.Run(tc.block, func(t *testing.T) {
			yml := "sources:\n  - name: s\n    modbus:\n      devices:\n        - name: d\n          address: 127.0.0.1:5020\n          namespace: a/b\n          groups:\n            - interval: 1s\n              tags:\n                - {name: t, table: input, address: 0, type: uint16}\nsinks:\n  - name: h\n    " + tc.block + "\n"
			_, ps := Inspect("h.yaml", []byte(yml), Options{Offline: true})
			got := ps.Error()
			if tc.want == "" && len(ps) > 0 {
				t.Fatalf("unexpected problems: %v", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("problems %v, want one at %s", got, tc.want)
			}
		})
	}
}
