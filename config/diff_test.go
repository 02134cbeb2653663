package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/engine"
)

const diffBase = `
node: {id: edge-01}
data_dir: DATADIR
http: {listen: "127.0.0.1:0"}
sources:
  - name: plc1
    modbus:
      devices:
        - name: d
          address: 127.0.0.1:1502
          namespace: plant
          groups:
            - interval: 1s
              tags:
                - {name: t, table: holding, address: 0, type: uint16}
  - name: plc2
    modbus:
      devices:
        - name: d
          address: 127.0.0.1:1503
          namespace: plant2
          groups:
            - interval: 1s
              tags:
                - {name: t, table: holding, address: 0, type: uint16}
processors:
  - name: sc
    scale:
      rules:
        - {match: ["plant/#"], scale: 2}
sinks:
  - name: uns
    buffer: {type: memory, capacity: 1000}
    mqtt: {url: "tcp://127.0.0.1:1883"}
  - name: hist
    batch_size: 100
    buffer: {type: disk, max_bytes: 100000000}
    historian: {retention: 30d}
`

func parseDiff(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := Parse("diff.yaml", []byte(text), noEnv)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, text)
	}
	return cfg
}

// edit applies string replacements to the base configuration, each of
// which must match.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := diffBase
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q not in the base config", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name  string
		edits []string
		want  Diff
		str   string
	}{
		{name: "same", want: Diff{}, str: "no changes"},
		{name: "source key changed", edits: []string{"127.0.0.1:1503", "127.0.0.1:1504"},
			want: Diff{Sources: ComponentDiff{Changed: []string{"plc2"}}}, str: "sources: ~plc2"},
		{name: "source added and removed", edits: []string{"name: plc2", "name: plc3"},
			want: Diff{Sources: ComponentDiff{Added: []string{"plc3"}, Removed: []string{"plc2"}}}, str: "sources: +plc3 -plc2"},
		{name: "sink block changed keeps buffer", edits: []string{"retention: 30d", "retention: 7d"},
			want: Diff{Sinks: ComponentDiff{Changed: []string{"hist"}}, KeepBuffers: []string{"hist"}}, str: "sinks: ~hist"},
		{name: "sink buffer changed", edits: []string{"capacity: 1000", "capacity: 2000"},
			want: Diff{Sinks: ComponentDiff{Changed: []string{"uns"}}}, str: "sinks: ~uns"},
		{name: "sink batch size changed", edits: []string{"batch_size: 100", "batch_size: 200"},
			want: Diff{Sinks: ComponentDiff{Changed: []string{"hist"}}, KeepBuffers: []string{"hist"}}, str: "sinks: ~hist"},
		{name: "sink removed", edits: []string{"  - name: uns\n    buffer: {type: memory, capacity: 1000}\n    mqtt: {url: \"tcp://127.0.0.1:1883\"}\n", ""},
			want: Diff{Sinks: ComponentDiff{Removed: []string{"uns"}}}, str: "sinks: -uns"},
		{name: "sources reordered", edits: []string{"name: plc1", "name: plcX", "name: plc2", "name: plc1", "name: plcX", "name: plc2"},
			want: Diff{Sources: ComponentDiff{Changed: []string{"plc1", "plc2"}}}, str: "sources: ~plc1 ~plc2"},
		{name: "processor changed", edits: []string{"scale: 2", "scale: 3"},
			want: Diff{Processors: true}, str: "processors changed"},
		{name: "rules added", edits: []string{"processors:", "rules:\n  - {name: hot, when: \"t > 10\", vars: {t: plant/d/t}, actions: [{event: {path: plant/events, payload: hot}}]}\nprocessors:"},
			want: Diff{Processors: true, Live: []string{"rules"}}, str: "processors changed; live: rules"},
		{name: "write policies", edits: []string{"processors:", "write_policies:\n  - {match: \"plant/#\", allow: true, roles: [operator]}\nprocessors:"},
			want: Diff{Live: []string{"write_policies"}}, str: "live: write_policies"},
		{name: "restart keys", edits: []string{"id: edge-01", "id: edge-02", `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:1"`},
			want: Diff{Restart: []string{"http", "node"}}, str: "restart needed for http, node"},
		{name: "log and engine", edits: []string{"node:", "log: {level: debug}\nengine: {drain_timeout: 1s}\nnode:"},
			want: Diff{Restart: []string{"engine", "log"}}, str: "restart needed for engine, log"},
		{name: "everything", edits: []string{"127.0.0.1:1503", "127.0.0.1:1504", "scale: 2", "scale: 3", "name: uns", "name: uns2", "id: edge-01", "id: edge-02"},
			want: Diff{Sources: ComponentDiff{Changed: []string{"plc2"}}, Sinks: ComponentDiff{Added: []string{"uns2"}, Removed: []string{"uns"}},
				Processors: true, Restart: []string{"node"}},
			str: "sources: ~plc2; sinks: +uns2 -uns; processors changed; restart needed for node"},
	}
	old := parseDiff(t, diffBase)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Compare(old, parseDiff(t, edit(t, tc.edits...)))
			if !diffEqual(d, tc.want) {
				t.Errorf("Compare =\n %+v\nwant\n %+v", d, tc.want)
			}
			if got := d.String(); got != tc.str {
				t.Errorf("String = %q, want %q", got, tc.str)
			}
			if d.Empty() != (tc.str == "no changes") || len(d.Lines()) == 0 != d.Empty() {
				t.Errorf("Empty = %v, Lines = %q", d.Empty(), d.Lines())
			}
		})
	}
}

func diffEqual(a, b Diff) bool {
	eq := func(x, y []string) bool { return len(x) == 0 && len(y) == 0 || slices.Equal(x, y) }
	cd := func(x, y ComponentDiff) bool {
		return eq(x.Added, y.Added) && eq(x.Removed, y.Removed) && eq(x.Changed, y.Changed)
	}
	return cd(a.Sources, b.Sources) && cd(a.Sinks, b.Sinks) && eq(a.KeepBuffers, b.KeepBuffers) &&
		a.Processors == b.Processors && eq(a.Live, b.Live) && eq(a.Restart, b.Restart)
}

func TestDiffLines(t *testing.T) {
	d := Diff{Sources: ComponentDiff{Added: []string{"a"}}, Sinks: ComponentDiff{Changed: []string{"k"}, Removed: []string{"r"}},
		KeepBuffers: []string{"k"}, Processors: true, Live: []string{"alarms"}, Restart: []string{"http"}}
	want := []string{
		"source a added",
		"sink k changed: restarts alone, keeps its buffer",
		"sink r removed (a durable buffer stays on disk until purged)",
		"processing chain rebuilt",
		"alarms changed: applied live",
		"http changed: needs a restart",
	}
	if got := d.Lines(); !slices.Equal(got, want) {
		t.Errorf("Lines =\n%q\nwant\n%q", got, want)
	}
}

// Parsing the same file twice gives no difference, for every example:
// nothing in a decoded Config defeats the comparison.
func TestCompareSameExamples(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	env := func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok {
			return v, true
		}
		return "x", true
	}
	compared := 0
	for _, f := range append(files, "") {
		data := []byte(diffBase)
		if f != "" {
			var err error
			if data, err = os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
		a, err := Parse(f, data, env)
		if err != nil {
			continue // needs an environment this test does not fake
		}
		b, _ := Parse(f, data, env)
		if d := Compare(a, b); !d.Empty() {
			t.Errorf("%s: the same file differs from itself: %s", f, d)
		}
		// And building one leaves it as loaded.
		a.DataDir, b.DataDir = t.TempDir(), ""
		opts, err := a.Build(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%s: Build: %v", f, err)
		}
		releaseAll(opts.Sinks)
		b.DataDir = a.DataDir
		if d := Compare(b, a); !d.Empty() {
			t.Errorf("%s: Build changed the configuration: %s", f, d)
		}
		compared++
	}
	t.Logf("compared %d configurations", compared)
	if compared < 2 {
		t.Fatalf("compared only %d configurations", compared)
	}
}

// BuildSource, BuildSink and BuildProcessors build one named component
// like Build does; BuildSinkDeferred leaves the buffer to OpenBuffer.
func TestBuildByName(t *testing.T) {
	dir := t.TempDir()
	cfg := parseDiff(t, strings.Replace(diffBase, "DATADIR", dir, 1))
	log := slog.New(slog.DiscardHandler)
	src, err := cfg.BuildSource("plc2", log)
	if err != nil || src.Name != "plc2" || src.Source == nil {
		t.Fatalf("BuildSource = %+v, %v", src, err)
	}
	if _, err := cfg.BuildSource("nope", log); err == nil || !strings.Contains(err.Error(), "source nope: not in the configuration") {
		t.Errorf("BuildSource(unknown) = %v", err)
	}
	procs, names, err := cfg.BuildProcessors(log)
	if err != nil || len(procs) != 1 || !slices.Equal(names, []string{"sc"}) {
		t.Fatalf("BuildProcessors = %v %v %v", procs, names, err)
	}
	mem, err := cfg.BuildSink("uns", log)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := mem.Buffer.(*buffer.Memory); !ok || m.Stats().Capacity != 1000 || mem.DeadLetters != nil || mem.BatchSize != DefaultBatchSize {
		t.Errorf("BuildSink(uns) = %+v", mem)
	}
	disk, err := cfg.BuildSink("hist", log)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := disk.Buffer.(*durable.Buffer)
	if !ok || disk.DeadLetters == nil || disk.BatchSize != 100 || d.Dir() != filepath.Join(dir, "buffers", "hist") {
		t.Fatalf("BuildSink(hist) = %+v", disk)
	}
	// The store is held: a deferred spec opens it only once released.
	deferred, err := cfg.BuildSinkDeferred("hist", log)
	if err != nil || deferred.Buffer != nil || deferred.OpenBuffer == nil {
		t.Fatalf("BuildSinkDeferred = %+v, %v", deferred, err)
	}
	if _, _, err := deferred.OpenBuffer(); err == nil {
		t.Error("OpenBuffer opened a store another buffer holds")
	}
	releaseAll([]engine.SinkSpec{disk})
	buf, dl, err := deferred.OpenBuffer()
	if err != nil || buf == nil || dl == nil {
		t.Fatalf("OpenBuffer after release = %v, %v, %v", buf, dl, err)
	}
	releaseAll([]engine.SinkSpec{{Buffer: buf, DeadLetters: dl}})
}

// Building leaves the Config as loaded: constructors that fill in
// defaults in place work on a deep copy, so a rebuilt configuration
// compares equal to the running one.
func TestBuildLeavesConfigAsLoaded(t *testing.T) {
	text := strings.Replace(diffBase, "DATADIR", t.TempDir(), 1)
	built, fresh := parseDiff(t, text), parseDiff(t, text)
	opts, err := built.Build(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	releaseAll(opts.Sinks)
	if d := Compare(fresh, built); !d.Empty() {
		t.Errorf("Build changed the configuration: %s", d)
	}
}

func TestDeepCopy(t *testing.T) {
	type inner struct{ N []int }
	type outer struct {
		P *inner
		S []inner
		M map[string]*inner
		A any
	}
	src := outer{P: &inner{N: []int{1}}, S: []inner{{N: []int{2}}}, M: map[string]*inner{"k": {N: []int{3}}}, A: &inner{N: []int{4}}}
	cp := deepCopy(src)
	cp.P.N[0], cp.S[0].N[0], cp.M["k"].N[0], cp.A.(*inner).N[0] = 10, 20, 30, 40
	if src.P.N[0] != 1 || src.S[0].N[0] != 2 || src.M["k"].N[0] != 3 || src.A.(*inner).N[0] != 4 {
		t.Errorf("copy shares memory with the original: %+v", src)
	}
}
