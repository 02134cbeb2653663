package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sim"
)

// writeSignal wraps a sink and closes second when its second Write begins:
// the engine confirms a batch (latency observed, buffer acked) before it
// writes the next, so from then on the first batch shows in the metrics.
type writeSignal struct {
	pipeline.Sink
	mu     sync.Mutex
	writes int
	second chan struct{}
}

func (s *writeSignal) Write(ctx context.Context, batch []model.Sample) error {
	s.mu.Lock()
	s.writes++
	if s.writes == 2 {
		close(s.second)
	}
	s.mu.Unlock()
	return s.Sink.Write(ctx, batch)
}

func (s *writeSignal) Status() pipeline.Status {
	if r, ok := s.Sink.(pipeline.StatusReporter); ok {
		return r.Status()
	}
	return pipeline.Status{}
}

// The real /metrics of a running gateway (the demo's shape: the simulated
// plant polled over Modbus, a deadband processor, an MQTT sink to an
// embedded broker) passes promlint, every HELP line says more than the
// metric's name, and latency is a histogram that has observations once a
// sample was delivered.
func TestMetricsLint(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	plant, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: 1}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer plant.Close()
	b, err := broker.Start("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	tags, err := yaml.Marshal(sim.PlantTags()[:3])
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	fmt.Fprintf(&text, `node: {id: lint}
data_dir: %q
processors:
  - name: changes
    deadband: {rules: [{match: ["elsewhere/**"], absolute: 0.5}]}
sources:
  - name: line
    modbus:
      devices:
        - name: plc
          address: %q
          unit_id: 1
          timeout: 1s
          namespace: plant
          groups:
            - interval: 50ms
              tags:
`, t.TempDir(), plant.Addr())
	for _, line := range strings.Split(strings.TrimRight(string(tags), "\n"), "\n") {
		text.WriteString("                " + line + "\n")
	}
	fmt.Fprintf(&text, `sinks:
  - name: uns
    buffer: {type: memory, capacity: 1000}
    mqtt: {url: tcp://%s, client_id: lint, topic_prefix: lint, qos: 1}
`, b.Addr())
	cfg, err := config.Parse("lint.yaml", []byte(text.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text.String())
	}
	opts, err := cfg.Build(log)
	if err != nil {
		t.Fatal(err)
	}
	signal := &writeSignal{Sink: opts.Sinks[0].Sink, second: make(chan struct{})}
	opts.Sinks[0].Sink = signal
	eng, err := engine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	select {
	case <-signal.second:
	case <-time.After(2 * time.Minute):
		t.Fatal("no second write within 2 min")
	}

	h := New(Options{Status: eng, NodeID: "lint", Version: "test"}).Handler()
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %q with the source running and the sink connected", code, body)
	}
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	families := parseExposition(t, strings.NewReader(body))
	for name, f := range families {
		if !strings.HasPrefix(name, "weir_") {
			continue
		}
		if restates(f.help, name) {
			t.Errorf("%s: HELP %q only restates the name", name, f.help)
		}
		if strings.HasPrefix(f.help, "Undocumented") {
			t.Errorf("%s: not in the metric catalogue (api/help.go)", name)
		}
	}
	for _, name := range []string{"weir_sink_latency_seconds", "weir_sink_gateway_latency_seconds"} {
		if f := families[name]; f.typ != "histogram" {
			t.Errorf("%s: type %q, want histogram", name, f.typ)
		}
		n := sampleValue(t, body, name+`_count{name="uns"}`)
		inf := sampleValue(t, body, name+`_bucket{name="uns",le="+Inf"}`)
		if n == 0 || inf != n {
			t.Errorf("%s: count %v, +Inf bucket %v: want the delivered samples observed", name, n, inf)
		}
	}
	for _, want := range []string{
		`weir_component_up{kind="source",name="line"} 1`,
		`weir_component_up{kind="sink",name="uns"} 1`,
		`weir_component_child_up{child="plc",kind="source",name="line"} 1`,
		`weir_component_state{kind="sink",name="uns",state="running"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

type family struct{ help, typ string }

// parseExposition reads the HELP and TYPE lines of a text exposition.
func parseExposition(t *testing.T, r io.Reader) map[string]family {
	t.Helper()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]family{}
	for _, line := range strings.Split(string(data), "\n") {
		if f, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, text, _ := strings.Cut(f, " ")
			fam := out[name]
			fam.help = text
			out[name] = fam
		} else if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			fam := out[name]
			fam.typ = typ
			out[name] = fam
		}
	}
	return out
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// restates reports whether help says no more than the metric's name: the
// same words, give or take the weir prefix and the total suffix.
func restates(help, name string) bool {
	words := func(s string) string {
		s = nonWord.ReplaceAllString(strings.ToLower(s), " ")
		s = strings.TrimSpace(s)
		s = strings.TrimPrefix(s, "weir ")
		return strings.TrimSuffix(s, " total")
	}
	h := words(help)
	return h == "" || h == words(name) || len(strings.Fields(h)) < 4
}

func sampleValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

// The check itself: a HELP that repeats the name is caught.
func TestRestates(t *testing.T) {
	for _, tt := range []struct {
		help, name string
		want       bool
	}{
		{"weir_sink_samples_written_total", "weir_sink_samples_written_total", true},
		{"sink samples written", "weir_sink_samples_written_total", true},
		{"", "weir_x", true},
		{"Samples the sink's destination confirmed.", "weir_sink_samples_written_total", false},
	} {
		if got := restates(tt.help, tt.name); got != tt.want {
			t.Errorf("restates(%q, %q) = %v, want %v", tt.help, tt.name, got, tt.want)
		}
	}
}

// Every counter and gauge the components of the examples report (built, not
// run: construction does no I/O) has a line in the metric catalogue, and
// the exposition passes promlint.
func TestMetricCatalogueComplete(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(f, data, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			cfg.DataDir = t.TempDir()
			for i := range cfg.Sinks {
				cfg.Sinks[i].Buffer.Type = config.BufferMemory
			}
			opts, err := cfg.Build(slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			eng, err := engine.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			_, body := get(t, New(Options{Status: eng}).Handler(), "/metrics")
			for name, f := range parseExposition(t, strings.NewReader(body)) {
				if strings.HasPrefix(f.help, "Undocumented") {
					t.Errorf("%s: not in the metric catalogue (api/help.go)", name)
				}
				if strings.HasPrefix(name, "weir_") && restates(f.help, name) {
					t.Errorf("%s: HELP %q only restates the name", name, f.help)
				}
			}
			problems, err := promlint.New(strings.NewReader(body)).Lint()
			if err != nil {
				t.Fatalf("promlint: %v", err)
			}
			for _, p := range problems {
				t.Errorf("promlint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}
